// Settings: the same values as ahoy.txt, checked by the box with the same rules.
import {get, post} from './api.js';
import {clear, el} from '/dom.js';
import {say} from './feedback.js';

const HINTS = {
  box_name: 'Letters a-z, digits and hyphens. The box answers at <name>.local.',
  wifi_name: 'What people see in their Wi-Fi list. Up to 32 bytes.',
  wifi_passphrase: '8 to 63 characters, plain letters, digits and punctuation.',
  country: 'Two letters, e.g. DE, US, KE. Sets the legal channels and power. Empty: a safe worldwide set.',
  band: '2.4 GHz reaches further and every phone has it. 5 GHz needs a country.',
  channel: 'Pick one few neighbours use. 1, 6 and 11 do not overlap on 2.4 GHz.',
  retention_days: 'Older messages are deleted. 0 keeps them forever.',
  retention_messages: 'Per room or chat; the oldest go first. 0 means no limit.',
  default_room: 'Every new phone joins this room and opens in it; people can leave it. none: no such room.',
};

let section = null;

export async function show(screen) {
  section = screen;
  clear(section, el('p', {class: 'muted'}, 'Loading…'));
  try {
    render(await get('settings'));
  } catch (e) {
    clear(section, el('p', {class: 'status', 'data-kind': 'error'}, e.message));
  }
}

function field(name, label, input) {
  input.id = `set-${name}`;
  input.name = name;
  input.dataset.testid = `setting-${name}`;
  input.setAttribute('aria-describedby', `hint-${name} error-${name}`);
  return el('div', {class: 'field', 'data-field': name},
    el('label', {for: input.id}, label),
    input,
    el('p', {class: 'hint', id: `hint-${name}`}, HINTS[name] || ''),
    el('p', {class: 'field-error', id: `error-${name}`, testid: `error-${name}`, role: 'alert', hidden: true}));
}

function textInput(value, attrs = {}) {
  return el('input', {type: 'text', value, autocomplete: 'off', autocapitalize: 'off', spellcheck: 'false', ...attrs});
}

function render(data) {
  const v = data.values;
  const L = data.labels;
  const open = v.wifi_passphrase === '';
  const openRadio = el('input', {type: 'radio', name: 'security', value: 'open', checked: open, testid: 'security-open'});
  const passRadio = el('input', {type: 'radio', name: 'security', value: 'passphrase', checked: !open, testid: 'security-passphrase'});
  const passphraseField = field('wifi_passphrase', L.wifi_passphrase,
    textInput(v.wifi_passphrase, {minlength: 8, maxlength: 63}));
  const band = el('select', {},
    el('option', {value: '2.4', selected: v.band === '2.4'}, '2.4 GHz'),
    el('option', {value: '5', selected: v.band === '5'}, '5 GHz'));
  const channelHint = (b) => {
    const list = data.channels[b] || [];
    return list.length ? `Allowed with the saved country: ${list.join(', ')}.` : 'Not available with the saved country.';
  };
  const channelField = field('channel', L.channel, el('input', {type: 'number', min: 1, max: 196, value: v.channel, inputmode: 'numeric'}));
  const setChannelHint = () => { channelField.querySelector('.hint').textContent = `${HINTS.channel} ${channelHint(band.value)}`; };

  // What "open" means, in plain words, while it is the choice.
  const openNote = el('p', {class: 'hint', testid: 'open-network-note'},
    'An open network: anyone in range can join, and anyone nearby with a Wi-Fi sniffer can read chat sent to the plain address (http). ' +
    'The secure address (https) and calls stay encrypted. To encrypt everything over the air, choose "Only with the Wi-Fi password" and set one. ' +
    'Phones that know Wi-Fi Enhanced Open are encrypted even so where the box\'s Wi-Fi adapter offers it (open_network_encryption in ahoy.txt; not the Pi\'s own Wi-Fi).');
  const status = el('div', {class: 'status', role: 'status', testid: 'settings-status', hidden: true});
  const notes = el('ul', {testid: 'settings-notes'});
  const form = el('form', {novalidate: true, testid: 'settings-form'},
    field('box_name', L.box_name, textInput(v.box_name, {maxlength: 63})),
    field('wifi_name', L.wifi_name, textInput(v.wifi_name)),
    el('fieldset', {class: 'plain'},
      el('legend', {class: 'label'}, 'Who may join'),
      el('label', {class: 'inline'}, openRadio, 'Anyone (open network)'),
      el('label', {class: 'inline'}, passRadio, 'Only with the Wi-Fi password')),
    openNote,
    passphraseField,
    field('country', L.country, textInput(v.country, {maxlength: 3, autocapitalize: 'characters', placeholder: 'e.g. DE'})),
    field('band', L.band, band),
    channelField,
    field('retention_days', L.retention_days, el('input', {type: 'number', min: 0, max: 3650, value: v.retention_days, inputmode: 'numeric'})),
    field('retention_messages', L.retention_messages, el('input', {type: 'number', min: 0, max: 1000000, value: v.retention_messages, inputmode: 'numeric'})),
    field('default_room', L.default_room, textInput(v.default_room, {maxlength: 48, autocapitalize: 'words', spellcheck: 'true'})),
    el('p', {class: 'hint'}, 'Changing the Wi-Fi name, password, country, band or channel restarts the hotspot: every phone is disconnected and must join again.'),
    el('div', {class: 'actions'}, el('button', {type: 'submit', class: 'primary', testid: 'settings-save'}, 'Save')),
    status, notes);

  const syncSecurity = () => {
    passphraseField.hidden = openRadio.checked;
    openNote.hidden = !openRadio.checked;
  };
  openRadio.addEventListener('change', syncSecurity);
  passRadio.addEventListener('change', syncSecurity);
  band.addEventListener('change', setChannelHint);
  syncSecurity();
  setChannelHint();

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const values = {};
    for (const name of Object.keys(v)) values[name] = form.elements[name].value;
    if (openRadio.checked) values.wifi_passphrase = '';
    else if (!values.wifi_passphrase) {
      showErrors(form, {wifi_passphrase: 'Type a Wi-Fi password, or choose an open network.'});
      say(status, 'Nothing was saved: fix the marked settings.', 'error');
      return;
    }
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    showErrors(form, {});
    clear(notes);
    try {
      const r = await post('settings', values);
      say(status, r.message, r.saved ? 'ok' : 'info');
      clear(notes, (r.notes || []).map((n) => el('li', {testid: 'settings-note'}, n)));
    } catch (e) {
      const fields = (e.data && e.data.fields) || {};
      showErrors(form, fields);
      const general = (e.data && e.data.general) || [];
      say(status, [e.message, ...general].join(' '), 'error');
      const first = form.querySelector('[aria-invalid="true"]');
      if (first) first.focus();
    } finally {
      button.disabled = false;
    }
  });

  clear(section, el('div', {class: 'card'},
    el('h2', {}, 'Settings'),
    data.pending ? el('p', {class: 'status', 'data-kind': 'warn', testid: 'settings-pending'},
      data.dev ? 'Saved changes are waiting; in development mode nothing applies them.'
        : 'Saved changes are being applied.') : null,
    el('p', {class: 'muted'}, 'These are the same settings as in ahoy.txt on the SD card; saving here writes them there too.'),
    form));
}

function showErrors(form, fields) {
  for (const box of form.querySelectorAll('[data-field]')) {
    const name = box.dataset.field;
    const error = box.querySelector('.field-error');
    const input = form.elements[name];
    const message = fields[name];
    error.textContent = message || '';
    error.hidden = !message;
    if (message) input.setAttribute('aria-invalid', 'true');
    else input.removeAttribute('aria-invalid');
  }
}
