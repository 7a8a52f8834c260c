// Every English string the app shows, in one place so it can be translated.
// Placeholders look like {name}; t() fills them in.

export const strings = {
  app_name: 'Ahoy',
  tagline: 'Chat and call with everyone on this Wi-Fi. Nothing leaves the box.',

  // Joining
  join_title: 'Welcome aboard',
  join_label: 'Your name',
  join_hint: 'Others will see this name. Up to 32 characters.',
  join_button: 'Join',
  join_working: 'Joining…',
  join_forgotten: 'The box no longer knows this phone. Pick your name again.',
  join_name_empty: 'Type a name first.',
  handoff_failed: 'Could not take over your identity from the plain address. Join with your name, or go back and try again.',

  // Connection
  conn_online: 'Connected',
  conn_connecting: 'Connecting…',
  conn_offline: 'Offline. Messages will be sent when the box is back.',
  conn_replaced: 'Ahoy is open in another tab or window on this phone.',
  conn_use_here: 'Use here',
  conn_origin: 'The box refused this page address. Open Ahoy from the address the box shows.',

  // Tabs and lists
  tab_chats: 'Chats',
  tab_people: 'People',
  tab_rooms: 'Rooms',
  chats_empty: 'No chats yet. Pick someone under People or join a room.',
  people_empty: 'Nobody else is online right now.',
  rooms_empty: 'No rooms yet. Create the first one.',
  status_online: 'online',
  status_busy: 'in a call',
  status_offline: 'offline',
  you: 'You',
  someone: 'Someone',
  room_counts: '{online} online · {members}/{limit} members',
  room_inactive_tag: 'closed',
  room_call_tag: 'call: {n}',
  room_member_tag: 'joined',
  unread_label: '{n} unread',

  // Header buttons
  invite: 'Invite people',
  settings: 'Settings',
  back: 'Back',
  create_room: 'New room',

  // Conversation
  composer_label: 'Message',
  composer_placeholder: 'Message',
  send: 'Send',
  load_older: 'Load earlier messages',
  no_messages: 'No messages yet. Say hello!',
  msg_sending: 'Sending (not yet on the box)',
  msg_delivered: 'Delivered to the box',
  msg_read: 'Read',
  msg_failed: 'Not sent: {reason}',
  msg_too_long: 'Not sent: Messages can be at most {max} characters long. This one has {n}.',
  composer_count: '{n} / {max}',
  typing_one: '{name} is typing…',
  typing_many: '{n} people are typing…',
  dm_subtitle_online: 'online',
  dm_subtitle_busy: 'in a call',
  dm_subtitle_offline: 'offline. Messages wait on the box for them.',
  room_subtitle: '{online} online · {members} members',
  room_join_prompt: 'You are not in this room yet.',
  room_join: 'Join room',
  room_info: 'Room settings',
  messages_label: 'Messages',
  today: 'Today',

  // Rooms
  room_create_title: 'New room',
  room_name: 'Name',
  room_description: 'Description (optional)',
  room_limit: 'Participant limit',
  room_ephemeral: 'Delete messages when the room is deleted',
  room_active: 'Open (people can join and write)',
  room_create_button: 'Create',
  room_save: 'Save changes',
  room_leave: 'Leave room',
  room_delete: 'Delete room',
  room_delete_confirm: 'Delete "{name}" and its messages for everyone?',
  room_members: 'Participants',
  room_remove: 'Remove',
  room_remove_label: 'Remove {name} from the room',
  room_owner_tag: 'owner',
  room_qr_title: 'Join this room',
  room_removed: 'You were removed from "{name}".',
  room_deleted: 'The room "{name}" was deleted.',
  room_saved: 'Room saved.',
  close: 'Close',
  cancel: 'Cancel',

  // Invite / QR
  invite_title: 'Bring people in',
  invite_wifi: 'Join the Wi-Fi',
  invite_wifi_open: 'Network "{ssid}" (no password)',
  invite_wifi_pass: 'Network "{ssid}", password: {pass}',
  invite_app: 'Open Ahoy',
  invite_app_then: 'Then open Ahoy',
  invite_unavailable: 'Box details are not available right now.',
  qr_alt: 'QR code for {what}',

  // Settings
  settings_title: 'Settings',
  settings_name: 'Your name',
  settings_rename: 'Rename',
  settings_notify: 'Show notifications',
  settings_notify_on: 'Notifications are on.',
  settings_notify_blocked: 'Notifications are blocked in the browser settings.',
  settings_notify_unsupported: 'This browser cannot show notifications on this address.',
  settings_sound: 'Play a sound for new messages',
  settings_forget: 'Forget me on this phone',
  settings_forget_confirm: 'Forget your name and chats on this phone?',

  // Calls
  call_audio: 'Voice call',
  call_video: 'Video call',
  call_room_audio: 'Join voice call',
  call_room_video: 'Join video call',
  call_incoming_audio: 'Incoming voice call',
  call_incoming_video: 'Incoming video call',
  call_incoming_room: '{name} started a call in {room}',
  call_accept: 'Accept',
  call_reject: 'Decline',
  call_calling: 'Calling {name}…',
  call_ringing: 'Ringing…',
  call_connecting: 'Connecting…',
  call_connected: 'Connected',
  call_reconnecting: 'Reconnecting…',
  call_waiting_room: 'Waiting for others to join…',
  call_mute: 'Mute microphone',
  call_unmute: 'Unmute microphone',
  call_cam_off: 'Turn camera off',
  call_cam_on: 'Turn camera on',
  call_switch: 'Switch camera',
  call_speaker: 'Speaker',
  call_speaker_default: 'Default',
  call_hangup: 'Hang up',
  call_share: 'Send a file',
  call_share_to: 'Send to',
  call_ended_hangup: 'Call ended',
  call_ended_rejected: '{name} declined the call',
  call_ended_cancelled: 'Call cancelled',
  call_ended_no_answer: 'No answer',
  call_ended_disconnected: 'Connection lost',
  call_error: 'Could not call: {reason}',
  call_busy: '{name} is in another call.',
  call_with: 'Call with {names}',
  call_local: 'You',

  // Calls impossible
  calls_need_https_title: 'Calls need the secure address',
  calls_need_https: 'Text chat works here, but phones only allow the camera and microphone on a secure (https) page.',
  calls_open_https: 'Open the secure address',
  calls_warning_hint: 'Your browser may warn that the connection is not private: the box made its own certificate. Tap "Advanced" and continue, or install the box certificate first so the warning goes away.',
  calls_get_ca: 'Download the box certificate',
  calls_ca_android: 'Android: Settings › Security › Encryption & credentials › Install a certificate › CA certificate.',
  calls_ca_ios: 'iPhone: open the file, install the profile in Settings, then turn on full trust under General › About › Certificate Trust Settings.',
  calls_banner: 'Calls need the secure address.',
  calls_banner_more: 'How?',
  calls_no_webrtc: 'This browser cannot make calls. Try a recent Chrome, Firefox or Safari.',
  calls_denied: 'The camera or microphone is blocked. Allow it for this site in the browser settings, then try again.',
  calls_no_device: 'No camera or microphone was found.',
  calls_device_busy: 'The camera or microphone is used by another app.',

  // Files
  file_sending: 'Sending {name}',
  file_receiving: 'Receiving {name}',
  file_sent: 'Sent {name}',
  file_received: 'Received {name}',
  file_save: 'Save',
  file_failed: '{name} did not arrive',
  file_need_call: 'Files go straight from phone to phone during a call. Start a call first.',
  file_none_peer: 'Nobody is connected yet.',

  // Private rooms
  room_visibility: 'Who can find it',
  room_public: 'Public (listed for everyone)',
  room_hidden: 'Hidden (invitation only)',
  room_approval: 'Joining needs approval',
  room_hidden_tag: 'hidden',
  room_invited_tag: 'invited',
  room_pending_tag: 'asked',
  room_requests_tag: '{n} asking',
  room_pending: 'Waiting for a moderator to let you in.',
  room_pending_toast: 'Asked to join "{name}". You will be let in once a moderator approves.',
  room_invited_prompt: 'You are invited to this room.',
  room_invited_banner: '{name} invited you to "{room}".',
  room_request_toast: '{name} asks to join "{room}".',
  room_denied: 'Your request to join "{name}" was declined.',
  room_invite_link: 'Invite link',
  room_invite_link_make: 'Make an invite link',
  room_invite_link_reset: 'New link (the old one stops working)',
  room_requests: 'Asking to join',
  room_approve: 'Let in',
  room_deny: 'Decline',
  room_invite_people: 'Invite people online',
  room_invite: 'Invite',
  room_invite_nobody: 'Everyone online is already in or invited.',
  room_invited_list: 'Invited',
  room_moderator_tag: 'moderator',
  room_make_mod: 'Make moderator',
  room_unmake_mod: 'Not moderator',

  // Reactions, replies, search
  msg_actions: 'React or reply',
  react_add: 'React with {emoji}',
  react_remove: 'Take back {emoji}',
  reaction_label: '{emoji} {n}: {names}',
  reply: 'Reply',
  reply_to: 'Replying to {name}:',
  reply_cancel: 'Cancel reply',
  reply_earlier: 'An earlier message',
  search: 'Search',
  search_title: 'Search this chat',
  search_placeholder: 'Word or name',
  search_working: 'Searching…',
  search_count: '{n} found. Tap one to see it.',
  search_none: 'Nothing found.',

  // Profile
  profile_picture: 'Change picture',
  profile_uploading: 'Uploading the picture…',
  profile_picture_failed: 'The picture was not saved (error {status}). Try another one.',
  profile_status: 'Status line',
  profile_status_hint: 'e.g. On watch till 4',
  profile_colour: 'Colour',
  profile_save: 'Save',

  // Room calls and screen sharing
  call_join: 'Join call',
  call_in_room: 'In the call: {names}',
  call_peer_joined: '{name} joined the call',
  call_peer_left: '{name} left the call',
  screen_share: 'Share your screen',
  screen_stop: 'Stop sharing the screen',
  screen_failed: 'Could not share the screen: {reason}',
  screen_unsupported: 'Screen sharing needs a desktop browser; this one cannot share its screen.',

  // Files outside calls
  file_send: 'Send a file',
  file_send_to: 'Send a file to {name}',
  file_offline: '{name} is not online, so a file cannot go to them now.',
  file_waiting: 'Waiting for {name} to accept {file}',
  file_declined: '{name} declined {file}',
  file_offer_title: 'A file for you',
  file_offer: '{name} wants to send you {file} ({size}). It comes straight from their phone.',
  transfers_title: 'Files',

  // Direct connect (no box)
  direct_link: 'No box? Connect by address',
  direct_title: 'Connect by address',
  direct_intro: 'Two phones on the same network can chat without a box. One makes an invitation, the other answers it: copy the text or scan the code, both ways.',
  direct_start: 'Make an invitation',
  direct_join: 'I have an invitation',
  direct_offer: 'Your invitation',
  direct_offer_help: 'Give this to the other person (copy it or let them scan it), then paste their answer below.',
  direct_paste_answer: 'Their answer',
  direct_connect: 'Connect',
  direct_paste_offer: 'Their invitation',
  direct_make_answer: 'Make my answer',
  direct_answer: 'Your answer',
  direct_answer_help: 'Give this answer back to the person who invited you. The chat opens once they paste it.',
  direct_copy: 'Copy',
  direct_bad_code: 'That text is not an invitation or answer. Copy all of it and try again.',
  direct_no_webrtc: 'This browser cannot connect directly (it has no WebRTC). Try a recent Chrome, Firefox or Safari.',
  direct_no_inflate: 'This browser cannot read packed invitations. Try a recent Chrome, Firefox or Safari.',
  direct_qr_too_long: 'Too long for a QR code: copy the text instead.',
  direct_state_new: '',
  direct_state_connecting: 'Connecting…',
  direct_state_connected: 'Connected: messages go straight between you.',
  direct_state_disconnected: 'Connection interrupted…',
  direct_state_failed: 'Could not connect. Are both on the same network?',
  direct_state_closed: 'The other side left.',

  // Notifications
  notify_new_message: 'New message from {name}',
  notify_incoming_call: '{name} is calling',

  // Errors from the box that need our own words
  err_timeout: 'The box did not answer. Try again.',
  err_offline: 'Not connected to the box.',
};

/** Translate `key`, filling {placeholders} from `params`. */
export function t(key, params) {
  let s = strings[key] ?? key;
  if (params) s = s.replace(/\{(\w+)\}/g, (m, k) => (k in params ? String(params[k]) : m));
  return s;
}

/** Fill elements marked data-t / data-t-label / data-t-placeholder inside `root`. */
export function applyStrings(root = document) {
  for (const el of root.querySelectorAll('[data-t]')) el.textContent = t(el.dataset.t);
  for (const el of root.querySelectorAll('[data-t-label]')) {
    el.setAttribute('aria-label', t(el.dataset.tLabel));
    el.title = t(el.dataset.tLabel);
  }
  for (const el of root.querySelectorAll('[data-t-placeholder]')) el.placeholder = t(el.dataset.tPlaceholder);
}
