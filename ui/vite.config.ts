import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';

// Multi-page build. Each page is an HTML entry; they share `assets/`.
//   /            index.html        customer reservation page (served by `entrada serve`)
//   /admin/      admin/index.html  admin console (served by `entrada serve`; issue 16)
//   /kiosk/      kiosk/index.html  gate screens for the Tauri app (embedded from
//                dist/kiosk/ by src-tauri: self-contained, its JS and CSS inlined)
// `base: './'` keeps every URL relative, so the same dist/ works when served
// at / by the server and when embedded by Tauri.
const page = (path: string) => fileURLToPath(new URL(path, import.meta.url));

/**
 * Inlines a page's entry script and stylesheet into its HTML when the entry
 * is self-contained (no shared chunks): on a phone with 150 ms of latency one
 * request less is ~20 % of the time to the month view. Pages whose entry
 * imports shared chunks are left as they are. Pages in a subfolder (kiosk/)
 * refer to `../assets/`.
 */
function inlineEntry(htmlFiles: string[]): Plugin {
  return {
    name: 'entrada-inline-entry',
    apply: 'build',
    enforce: 'post',
    generateBundle(_options, bundle) {
      const html = Object.values(bundle).filter((f) => f.type === 'asset' && f.fileName.endsWith('.html'));
      const usedElsewhere = (name: string, self: string) =>
        html.some((f) => f.fileName !== self && f.type === 'asset' && String(f.source).includes(name));
      for (const file of html) {
        if (file.type !== 'asset' || !htmlFiles.includes(file.fileName)) continue;
        let source = String(file.source);
        source = source.replace(/<script type="module" crossorigin src="(?:\.\/|(?:\.\.\/)+)(assets\/[^"]+\.js)"><\/script>/g, (tag, name: string) => {
          const chunk = bundle[name];
          if (!chunk || chunk.type !== 'chunk' || chunk.imports.length || chunk.dynamicImports.length) return tag;
          if (usedElsewhere(name, file.fileName)) return tag;
          delete bundle[name];
          return `<script type="module">${chunk.code.replace(/<\/(script)/gi, '<\\/$1')}</script>`;
        });
        source = source.replace(/<link rel="stylesheet" crossorigin href="(?:\.\/|(?:\.\.\/)+)(assets\/[^"]+\.css)">/g, (tag, name: string) => {
          const css = bundle[name];
          if (!css || css.type !== 'asset' || usedElsewhere(name, file.fileName)) return tag;
          delete bundle[name];
          return `<style>${String(css.source).replace(/<\/(style)/gi, '<\\/$1')}</style>`;
        });
        file.source = source;
      }
    },
  };
}

export default defineConfig({
  base: './',
  plugins: [inlineEntry(['index.html', 'kiosk/index.html'])],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2020',
    modulePreload: { polyfill: false },
    rollupOptions: {
      input: {
        main: page('index.html'),
        kiosk: page('kiosk/index.html'),
        admin: page('admin/index.html'),
      },
    },
  },
  server: {
    // `npm run dev` against a local `entrada serve` (default port).
    proxy: { '/api': 'http://127.0.0.1:8080' },
  },
});
