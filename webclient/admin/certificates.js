// Certificates: the box's own CA for phones to install, or a real certificate for a real domain.
import {api, del, get} from './api.js';
import {clear, el} from '/dom.js';
import {confirmInline, say} from './feedback.js';
import {daysUntil, formatDate} from './format.js';

let section = null;

export async function show(screen) {
  section = screen;
  clear(section, el('p', {class: 'muted'}, 'Loading…'));
  try {
    render(await get('certificates'));
  } catch (e) {
    clear(section, el('p', {class: 'status', 'data-kind': 'error'}, e.message));
  }
}

function expiry(info, testid) {
  if (!info) return el('p', {class: 'empty', testid}, 'Not made yet (the box makes it when it starts).');
  const days = daysUntil(info.expires);
  const kind = days < 0 ? 'error' : days < 30 ? 'warn' : null;
  return el('p', {testid, class: kind ? 'status' : null, 'data-kind': kind},
    days < 0 ? `Expired on ${formatDate(info.expires)}.` : `Valid until ${formatDate(info.expires)} (${days} days).`);
}

function render(data) {
  const status = el('p', {class: 'status', role: 'status', testid: 'cert-status', hidden: true});
  const certInput = el('input', {type: 'file', name: 'certificate', id: 'cert-file', accept: '.crt,.pem,.cer', testid: 'cert-file'});
  const keyInput = el('input', {type: 'file', name: 'key', id: 'key-file', accept: '.key,.pem', testid: 'key-file'});
  const upload = el('form', {testid: 'cert-upload'},
    el('label', {for: 'cert-file'}, 'Certificate (PEM, the server certificate first, then its chain)'), certInput,
    el('label', {for: 'key-file'}, 'Private key (PEM, without a password)'), keyInput,
    el('div', {class: 'actions'}, el('button', {type: 'submit', class: 'primary', testid: 'cert-upload-button'}, 'Upload')));
  upload.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!certInput.files.length || !keyInput.files.length) {
      say(status, 'Choose both files: the certificate and its private key.', 'error');
      return;
    }
    const form = new FormData(upload);
    try {
      const r = await api('POST', 'certificates/custom', form);
      await show(section);
      say(section.querySelector('[data-testid="cert-status"]'), r.message, 'ok');
    } catch (e) {
      say(status, e.message, 'error');
    }
  });

  let custom = null;
  if (data.custom) {
    const remove = el('button', {type: 'button', testid: 'cert-remove'}, 'Stop using it');
    remove.addEventListener('click', () => confirmInline(remove, 'Go back to the box certificate?', 'Yes', async () => {
      try {
        const r = await del('certificates/custom');
        await show(section);
        say(section.querySelector('[data-testid="cert-status"]'), r.message, 'ok');
      } catch (e) {
        say(status, e.message, 'error');
      }
    }));
    custom = el('div', {class: 'card', testid: 'cert-custom'},
      el('h2', {}, 'Your uploaded certificate'),
      el('dl', {class: 'facts'},
        el('dt', {}, 'For'), el('dd', {}, data.custom.names.join(', ')),
        el('dt', {}, 'Issued by'), el('dd', {}, data.custom.issuer)),
      expiry(data.custom, 'custom-expiry'),
      el('div', {class: 'actions'}, remove));
  }

  clear(section, status, el('div', {class: 'grid'},
    el('div', {class: 'card'},
      el('h2', {}, "The box's own certificate"),
      el('p', {class: 'muted'}, 'Calls need HTTPS. The box made its own certificate authority (CA) at its first start. Phones that install it open https://ahoy.internal without a warning.'),
      el('h3', {}, 'Certificate authority'), expiry(data.ca, 'ca-expiry'),
      el('h3', {}, 'Server certificate'), expiry(data.box, 'box-expiry'),
      el('div', {class: 'actions'},
        el('a', {class: 'button', href: data.downloads.ca, download: 'ahoy-ca.crt', testid: 'download-ca'}, 'Download the CA (Android, laptops)'),
        el('a', {class: 'button', href: data.downloads.ios_profile, download: 'ahoy.mobileconfig', testid: 'download-ios'}, 'iPhone/iPad profile')),
      el('p', {class: 'hint'}, 'Android: Settings, Security, Install a certificate, CA certificate. iPhone: open the profile, install it in Settings, then turn on full trust under General, About, Certificate Trust Settings.')),
    custom,
    el('div', {class: 'card'},
      el('h2', {}, 'Use a real certificate'),
      el('p', {class: 'muted'}, 'If you own a domain and point it at the box (e.g. chat.example.org → 10.42.0.1 in your own DNS), upload its certificate and key. The box checks they match and are valid, and uses them from its next restart.'),
      data.in_use === 'custom' ? el('p', {class: 'hint'}, 'Uploading again replaces the current one.') : null,
      upload)));
}
