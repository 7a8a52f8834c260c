// Drives Debian's firefox-esr over WebDriver BiDi (puppeteer-core) for the
// pytest side (tests/engines/enginekit.py). One JSON command per stdin line,
// one JSON reply per stdout line: {"ok": value} or {"error": "..."}.
// Each `open` makes a separate browser context (its own storage): one person.
import readline from 'node:readline';
import puppeteer from 'puppeteer-core';

const browser = await puppeteer.launch({
  browser: 'firefox',
  executablePath: process.env.AHOY_FIREFOX || '/usr/bin/firefox-esr',
  headless: true,
  acceptInsecureCerts: true,
  extraPrefsFirefox: {
    'media.navigator.streams.fake': true,
    'media.navigator.permission.disabled': true,
    'media.autoplay.default': 0,
    'media.autoplay.blocking_policy': 0,
    // Loopback is where the test box lives: never a proxy, never "captive portal" probes.
    'network.captive-portal-service.enabled': false,
    'network.connectivity-service.enabled': false,
  },
});

const pages = new Map();
let nextId = 1;

async function run(cmd) {
  const page = pages.get(cmd.page);
  switch (cmd.op) {
    case 'open': {
      const context = await browser.createBrowserContext();
      const p = await context.newPage();
      const id = nextId++;
      const entry = {context, page: p, errors: []};
      p.on('pageerror', (err) => entry.errors.push(String(err && err.message || err)));
      p.on('console', (msg) => {
        if (msg.type() === 'error') entry.errors.push('console: ' + msg.text());
      });
      await p.setViewport({width: 390, height: 844});
      pages.set(id, entry);
      if (cmd.url) await p.goto(cmd.url);
      return id;
    }
    case 'goto':
      await page.page.goto(cmd.url);
      return null;
    case 'eval':
      // An expression; BiDi evaluates it outside the page's Content-Security-Policy.
      return await page.page.evaluate(cmd.expr);
    case 'click':
      await page.page.locator(cmd.sel).setTimeout(cmd.timeout || 15000).click();
      return null;
    case 'fill':
      await page.page.locator(cmd.sel).setTimeout(cmd.timeout || 15000).fill(cmd.text);
      return null;
    case 'upload': {
      // As click and fill do: wait for it (a dialog that opens late under load).
      const input = await page.page.waitForSelector(cmd.sel, {timeout: cmd.timeout || 15000});
      if (!input) throw new Error('no ' + cmd.sel);
      await input.uploadFile(...cmd.files);
      return null;
    }
    case 'errors':
      return page.errors.splice(0);
    case 'close':
      await page.context.close();
      pages.delete(cmd.page);
      return null;
    case 'version':
      return await browser.version();
    default:
      throw new Error('unknown op ' + cmd.op);
  }
}

const lines = readline.createInterface({input: process.stdin});
for await (const line of lines) {
  let reply;
  try {
    const value = await run(JSON.parse(line));
    reply = {ok: value === undefined ? null : value};
  } catch (err) {
    reply = {error: String(err && err.stack || err)};
  }
  process.stdout.write(JSON.stringify(reply) + '\n');
}
await browser.close();
