// A small W3C WebDriver client over fetch: just what the desktop tests use
// (tauri-driver → WebKitWebDriver → the real entrada-desktop window).

const ELEMENT = 'element-6066-11e4-a52e-4f735466cecb';

export class WebDriver {
  constructor(url) {
    this.url = url.replace(/\/$/, '');
    this.session = null;
  }

  async cmd(method, path, body) {
    const res = await fetch(this.url + path, {
      method,
      headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      // A wedged driver or page fails the step instead of hanging the run.
      signal: AbortSignal.timeout(30000),
    }).catch((e) => {
      throw new Error(`${method} ${path}: ${e.message}`);
    });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) {
      const v = data.value ?? {};
      const err = new Error(`${method} ${path}: ${res.status} ${v.error ?? ''} ${v.message ?? JSON.stringify(data)}`);
      err.webdriver = v.error;
      throw err;
    }
    return data.value;
  }

  s(path) {
    return `/session/${this.session}${path}`;
  }

  async start(capabilities) {
    const v = await this.cmd('POST', '/session', { capabilities: { alwaysMatch: capabilities } });
    this.session = v.sessionId;
    return v;
  }

  async quit() {
    if (!this.session) return;
    const id = this.session;
    this.session = null;
    await this.cmd('DELETE', `/session/${id}`).catch(() => {});
  }

  async exec(script, ...args) {
    return this.cmd('POST', this.s('/execute/sync'), { script, args });
  }

  async find(css) {
    const v = await this.cmd('POST', this.s('/element'), { using: 'css selector', value: css });
    const id = v?.[ELEMENT] ?? (v && Object.values(v)[0]);
    if (!id) throw new Error(`no element for ${css}: ${JSON.stringify(v)}`);
    return id;
  }

  /**
   * Runs `act` on a freshly found element; if the page re-rendered it between
   * the find and the act (a stale reference, which no user can meet: a person
   * presses whatever is on screen), it finds it again, up to three times.
   */
  async onElement(css, act) {
    for (let attempt = 1; ; attempt++) {
      const el = await this.find(css);
      try {
        return await act(el);
      } catch (e) {
        if (e.webdriver !== 'stale element reference' || attempt >= 3) throw e;
      }
    }
  }

  async click(css) {
    await this.onElement(css, (el) => this.cmd('POST', this.s(`/element/${el}/click`), {}));
  }

  async type(css, text) {
    await this.onElement(css, async (el) => {
      await this.cmd('POST', this.s(`/element/${el}/clear`), {}).catch(() => {});
      await this.cmd('POST', this.s(`/element/${el}/value`), { text });
    });
  }

  async text(css) {
    return this.onElement(css, (el) => this.cmd('GET', this.s(`/element/${el}/text`)));
  }

  /** Keystrokes to whatever has focus, with no pause between them (a USB scanner). */
  async keys(text) {
    // WebKit takes ~80 ms to deliver the first key of a sequence: a Shift
    // tap (no character) first, so the code's own keys arrive back to back.
    const actions = [{ type: 'keyDown', value: '\uE008' }, { type: 'keyUp', value: '\uE008' }];
    for (const c of text) {
      const ch = c === '\n' ? '\uE007' : c; // Enter
      actions.push({ type: 'keyDown', value: ch }, { type: 'keyUp', value: ch });
    }
    await this.cmd('POST', this.s('/actions'), { actions: [{ type: 'key', id: 'kbd', actions }] });
    await this.cmd('DELETE', this.s('/actions')).catch(() => {});
  }

  async screenshot() {
    // WebKit's WebDriver takes the screenshot at the page's next paint after
    // the request; an idle screen where nothing changes (the scanner of a
    // handheld, whose header hides the clock) has none: make some, invisibly,
    // while the request waits.
    await this.exec(`const s = document.documentElement.style; window.__shotTimers = [100, 400, 1000, 2500, 6000].map((ms, i) => setTimeout(() => { s.opacity = i % 2 ? '' : '0.999'; }, ms)); return 1`).catch(() => {});
    try {
      return Buffer.from(await this.cmd('GET', this.s('/screenshot')), 'base64');
    } finally {
      await this.exec(`(window.__shotTimers ?? []).forEach(clearTimeout); document.documentElement.style.opacity = ''; return 1`).catch(() => {});
    }
  }

  /** Polls `fn` until it returns a truthy value (returned) or `ms` pass. */
  async until(what, fn, ms = 15000, every = 150) {
    const deadline = Date.now() + ms;
    let last;
    for (;;) {
      try {
        last = await fn();
        if (last) return last;
      } catch (e) {
        last = e;
      }
      if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
      await new Promise((r) => setTimeout(r, every));
    }
  }

  /** The value of a JS expression in the page. */
  async js(expr) {
    return this.exec(`return (${expr});`);
  }
}
