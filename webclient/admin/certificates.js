// Certificates: the box's own CA for phones to install, or a real certificate for a real domain.
import {api, del, get} from './api.js';
import {clear, confirmInline, daysUntil, formatDate, h, say} from './dom.js';

let section = null;

export async function show(el) {
  section = el;
  clear(section, h('p', {class: 'muted'}, 'Loading…'));
  try {
    render(await get('certificates'));
  } catch (e) {
    clear(section, h('p', {class: 'status', 'data-kind': 'error'}, e.message));
  }
}

function expiry(info, testid) {
  if (!info) return h('p', {class: 'empty', testid}, 'Not made yet (the box makes it when it starts).');
  const days = daysUntil(info.expires);
  const kind = days < 0 ? 'error' : days < 30 ? 'warn' : null;
  return h('p', {testid, class: kind ? 'status' : null, 'data-kind': kind},
    days < 0 ? `Expired on ${formatDate(info.expires)}.` : `Valid until ${formatDate(info.expires)} (${days} days).`);
}

function render(data) {
  const status = h('p', {class: 'status', role: 'status', testid: 'cert-status', hidden: true});
  const certInput = h('input', {type: 'file', name: 'certificate', id: 'cert-file', accept: '.crt,.pem,.cer', testid: 'cert-file'});
  const keyInput = h('input', {type: 'file', name: 'key', id: 'key-file', accept: '.key,.pem', testid: 'key-file'});
  const upload = h('form', {testid: 'cert-upload'},
    h('label', {for: 'cert-file'}, 'Certificate (PEM, the server certificate first, then its chain)'), certInput,
    h('label', {for: 'key-file'}, 'Private key (PEM, without a password)'), keyInput,
    h('div', {class: 'actions'}, h('button', {type: 'submit', class: 'primary', testid: 'cert-upload-button'}, 'Upload')));
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
    const remove = h('button', {type: 'button', testid: 'cert-remove'}, 'Stop using it');
    remove.addEventListener('click', () => confirmInline(remove, 'Go back to the box certificate?', 'Yes', async () => {
      try {
        const r = await del('certificates/custom');
        await show(section);
        say(section.querySelector('[data-testid="cert-status"]'), r.message, 'ok');
      } catch (e) {
        say(status, e.message, 'error');
      }
    }));
    custom = h('div', {class: 'card', testid: 'cert-custom'},
      h('h2', {}, 'Your uploaded certificate'),
      h('dl', {class: 'facts'},
        h('dt', {}, 'For'), h('dd', {}, data.custom.names.join(', ')),
        h('dt', {}, 'Issued by'), h('dd', {}, data.custom.issuer)),
      expiry(data.custom, 'custom-expiry'),
      h('div', {class: 'actions'}, remove));
  }

  clear(section, status, h('div', {class: 'grid'},
    h('div', {class: 'card'},
      h('h2', {}, "The box's own certificate"),
      h('p', {class: 'muted'}, 'Calls need HTTPS. The box made its own certificate authority (CA) at its first start. Phones that install it open https://ahoy.internal without a warning.'),
      h('h3', {}, 'Certificate authority'), expiry(data.ca, 'ca-expiry'),
      h('h3', {}, 'Server certificate'), expiry(data.box, 'box-expiry'),
      h('div', {class: 'actions'},
        h('a', {class: 'button', href: data.downloads.ca, download: 'ahoy-ca.crt', testid: 'download-ca'}, 'Download the CA (Android, laptops)'),
        h('a', {class: 'button', href: data.downloads.ios_profile, download: 'ahoy.mobileconfig', testid: 'download-ios'}, 'iPhone/iPad profile')),
      h('p', {class: 'hint'}, 'Android: Settings, Security, Install a certificate, CA certificate. iPhone: open the profile, install it in Settings, then turn on full trust under General, About, Certificate Trust Settings.')),
    custom,
    h('div', {class: 'card'},
      h('h2', {}, 'Use a real certificate'),
      h('p', {class: 'muted'}, 'If you own a domain and point it at the box (e.g. chat.example.org → 10.42.0.1 in your own DNS), upload its certificate and key. The box checks they match and are valid, and uses them from its next restart.'),
      data.in_use === 'custom' ? h('p', {class: 'hint'}, 'Uploading again replaces the current one.') : null,
      upload)));
}
