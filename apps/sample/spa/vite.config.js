import { readFileSync } from 'node:fs';
import { defineConfig } from 'vite';

// The version shown in the page and written to dist/version.json:
// VITE_APP_VERSION from the build (tools/app-images.sh sets it), else the
// package.json version.
const pkg = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8'));
const version = process.env.VITE_APP_VERSION || pkg.version;

export default defineConfig({
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsDir: 'assets',
    sourcemap: false,
  },
  plugins: [
    {
      name: 'webstack-version',
      // Written into index.html itself, so the version shows without scripts
      // and `curl /` tells which build is served.
      transformIndexHtml(html) {
        const escaped = version.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
        return html.replaceAll('%SPA_VERSION%', escaped);
      },
      generateBundle() {
        this.emitFile({
          type: 'asset',
          fileName: 'version.json',
          source: `${JSON.stringify({ name: pkg.name, version })}\n`,
        });
      },
    },
  ],
  server: {
    // `npm run dev` next to a local API: /api goes to it.
    proxy: {
      '/api': process.env.API_PROXY_TARGET || 'http://127.0.0.1:5000',
      '/health': process.env.API_PROXY_TARGET || 'http://127.0.0.1:5000',
    },
  },
});
