// Bundles the console (src/console/) into build/assets/console/ (the ASSETS binding's directory is
// build/assets, so a file's path there is its URL): index.html, and assets/app-<hash>.js and .css,
// minified by esbuild, with Preact (JSX compiled by esbuild; no other runtime). Content-hashed names
// under /console/assets/ are cached for a year; index.html is revalidated. Prints each file's size
// and its gzip size, the figure the README states.
import * as esbuild from 'esbuild';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const source = path.join(root, 'src/console');
export const outdir = path.join(root, 'build/assets/console');

/**
 * TEAMKEYS_BUILD=dev (make dev) keeps the one-click sign-in (`#signin=<token>`, see main.jsx); any
 * other build leaves it out of the bundle, so a deployed console never signs anyone in from a link.
 */
const dev = process.env.TEAMKEYS_BUILD === 'dev';

const options = {
  define: { DEV_SIGN_IN: JSON.stringify(dev) },
  entryPoints: { app: path.join(source, 'main.jsx') },
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['chrome100', 'firefox100', 'safari15'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  outdir,
  entryNames: 'assets/[name]-[hash]',
  metafile: true,
  legalComments: 'none',
  logLevel: 'warning',
};

/**
 * index.html with the hashed names of the bundle's script and stylesheet, by absolute path: the
 * worker answers index.html for any client route under /console/ (`/console/keys/key_1`), where a
 * relative path would miss.
 */
function writePage(metafile) {
  const outputs = Object.keys(metafile.outputs).map((file) => path.relative(outdir, path.resolve(root, file)));
  const script = outputs.find((f) => f.endsWith('.js'));
  const style = outputs.find((f) => f.endsWith('.css'));
  const page = readFileSync(path.join(source, 'index.html'), 'utf8')
    .replace('./app.js', `/console/${script}`)
    .replace('./app.css', `/console/${style}`);
  writeFileSync(path.join(outdir, 'index.html'), page);
}

/** Each built file's bytes and gzip bytes, and their sums. */
export function sizes() {
  const files = walk(outdir).sort().map((name) => {
    const bytes = readFileSync(path.join(outdir, name));
    return { name, bytes: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
  });
  const total = files.reduce((a, f) => ({ bytes: a.bytes + f.bytes, gzip: a.gzip + f.gzip }), { bytes: 0, gzip: 0 });
  return { files, total };
}

/** The files under `dir`, as paths relative to it. */
function walk(dir, prefix = '') {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? walk(path.join(dir, entry.name), `${prefix}${entry.name}/`) : [`${prefix}${entry.name}`],
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  rmSync(outdir, { recursive: true, force: true });
  mkdirSync(outdir, { recursive: true });
  const result = await esbuild.build(options);
  writePage(result.metafile);
  const { files, total } = sizes();
  for (const f of files) console.log(`console: ${f.name.padEnd(28)} ${String(f.bytes).padStart(7)} B, ${String(f.gzip).padStart(6)} B gzip`);
  console.log(`console: ${'total'.padEnd(28)} ${String(total.bytes).padStart(7)} B, ${String(total.gzip).padStart(6)} B gzip`);
}
