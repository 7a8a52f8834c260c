// System: the admin password, config backup and restore, restart, shut down, factory reset.
import {api, post} from './api.js';
import {clear, el} from '/dom.js';
import {confirmInline, say} from './feedback.js';

export function show(section, session) {
  clear(section, el('div', {class: 'grid'},
    passwordCard(), backupCard(), powerCard(), resetCard(session)));
}

function passwordCard() {
  const status = el('p', {class: 'status', role: 'status', testid: 'password-status', hidden: true});
  const oldErr = el('p', {class: 'field-error', testid: 'error-old', hidden: true});
  const newErr = el('p', {class: 'field-error', testid: 'error-new', hidden: true});
  const form = el('form', {novalidate: true, testid: 'password-form'},
    el('label', {for: 'pw-old'}, 'Current password'),
    el('input', {type: 'password', id: 'pw-old', name: 'old', autocomplete: 'current-password', testid: 'password-old'}), oldErr,
    el('label', {for: 'pw-new'}, 'New password'),
    el('input', {type: 'password', id: 'pw-new', name: 'new', autocomplete: 'new-password', minlength: 8, testid: 'password-new'}),
    el('p', {class: 'hint'}, 'At least 8 characters. A few unrelated words are easy to remember and hard to guess.'), newErr,
    el('label', {for: 'pw-again'}, 'New password again'),
    el('input', {type: 'password', id: 'pw-again', name: 'again', autocomplete: 'new-password', testid: 'password-again'}),
    el('div', {class: 'actions'}, el('button', {type: 'submit', class: 'primary', testid: 'password-save'}, 'Change password')),
    status);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const [oldPw, newPw, again] = ['old', 'new', 'again'].map((n) => form.elements[n].value);
    say(oldErr, ''); say(newErr, ''); say(status, '');
    if (newPw !== again) {
      say(newErr, 'The two new passwords differ.');
      return;
    }
    try {
      const r = await post('password', {old: oldPw, new: newPw});
      form.reset();
      say(status, r.message, 'ok');
    } catch (e) {
      const fields = (e.data && e.data.fields) || {};
      say(oldErr, fields.old || '');
      say(newErr, fields.new || '');
      say(status, e.message, 'error');
    }
  });
  return el('div', {class: 'card'}, el('h2', {}, 'Admin password'),
    el('p', {class: 'muted small'}, 'Other browsers signed in to this page are signed out when it changes. Forgot it? Hold the box button for 10 seconds, or put admin_password = ... into ahoy.txt on the SD card.'),
    form);
}

function backupCard() {
  const status = el('div', {class: 'status', role: 'status', testid: 'restore-status', hidden: true});
  const file = el('input', {type: 'file', name: 'file', id: 'restore-file', accept: '.txt,text/plain', testid: 'restore-file'});
  const form = el('form', {testid: 'restore-form'},
    el('label', {for: 'restore-file'}, 'Restore from a backup file'), file,
    el('div', {class: 'actions'}, el('button', {type: 'submit', testid: 'restore-button'}, 'Restore')), status);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!file.files.length) {
      say(status, 'Choose a backup file first.', 'error');
      return;
    }
    try {
      const r = await api('POST', 'restore', new FormData(form));
      clear(status, el('p', {}, r.message), el('ul', {}, (r.notes || []).map((n) => el('li', {}, n))),
        r.skipped_message ? el('p', {class: 'muted small', testid: 'restore-skipped'}, r.skipped_message) : null);
      status.dataset.kind = 'ok';
      status.hidden = false;
    } catch (e) {
      const problems = (e.data && e.data.problems) || [];
      clear(status, el('p', {}, e.message), el('ul', {}, problems.map((m) => el('li', {}, m))));
      status.dataset.kind = 'error';
      status.hidden = false;
    }
  });
  return el('div', {class: 'card'}, el('h2', {}, 'Backup'),
    el('p', {class: 'muted small'}, 'The backup is the box config file (ahoy.txt): names, Wi-Fi, channel, message keeping. It holds the Wi-Fi password but never the admin password. Messages are not in it. Restore takes back only what Settings can change; the rest is set in ahoy.txt on the SD card.'),
    el('div', {class: 'actions'}, el('a', {class: 'button', href: '/admin/api/backup', download: 'ahoy.txt', testid: 'backup-download'}, 'Download backup')),
    form);
}

function powerCard() {
  const status = el('p', {class: 'status', role: 'status', testid: 'power-status', hidden: true});
  const button = (action, label, question) => {
    const b = el('button', {type: 'button', testid: `power-${action}`}, label);
    b.addEventListener('click', () => confirmInline(b, question, `Yes, ${label.toLowerCase()}`, async () => {
      try {
        const r = await post('power', {action});
        say(status, r.message, r.done ? 'ok' : 'info');
      } catch (e) {
        say(status, e.message, 'error');
      }
    }));
    return b;
  };
  return el('div', {class: 'card'}, el('h2', {}, 'Power'),
    el('p', {class: 'muted small'}, 'Everyone is disconnected while the box is off; calls end. Messages are kept.'),
    el('div', {class: 'actions'},
      button('reboot', 'Restart', 'Restart the box now?'),
      button('shutdown', 'Shut down', 'Shut the box down now?')),
    status);
}

function resetCard(session) {
  const status = el('p', {class: 'status', role: 'status', testid: 'reset-status', hidden: true});
  const input = el('input', {type: 'text', id: 'reset-confirm', autocomplete: 'off', autocapitalize: 'characters', testid: 'reset-confirm'});
  const form = el('form', {novalidate: true},
    el('label', {for: 'reset-confirm'}, 'Type ERASE to confirm'), input,
    el('div', {class: 'actions'}, el('button', {type: 'submit', class: 'danger', testid: 'reset-button'}, 'Factory reset')),
    status);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (input.value.trim().toUpperCase() !== 'ERASE') {
      say(status, 'Type ERASE in the box above to confirm.', 'error');
      return;
    }
    try {
      const r = await post('factory-reset', {confirm: input.value});
      say(status, r.message, r.done ? 'ok' : 'info');
    } catch (e) {
      say(status, e.message, 'error');
    }
  });
  return el('div', {class: 'card'}, el('h2', {}, 'Factory reset'),
    el('p', {class: 'muted small'}, `Wipes the data partition of ${session ? session.box_name : 'the box'}: all messages, people, rooms, the admin password, certificates and settings saved here. The box restarts like new, with the settings in ahoy.txt on the SD card. This cannot be undone; download a backup first.`),
    form);
}
