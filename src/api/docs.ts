import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { Hono } from 'hono';

/**
 * The API reference at /docs: Swagger UI from the installed swagger-ui-dist package over the
 * service's own OpenAPI document. Everything is served from here (no CDN, works offline), and the
 * page's CSP allows scripts and styles from 'self' only, so the initializer is a file of ours
 * (docs/init.js) rather than the inline script Swagger UI's own index.html uses.
 */

const swaggerUiDir = path.dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
const ownDir = fileURLToPath(new URL('./docs/', import.meta.url));

const types = {
  css: 'text/css; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  png: 'image/png',
} as const;

/**
 * The only files served under /docs/assets: named one by one, never a folder, so nothing else of
 * node_modules (source maps, other bundles, package.json) can be asked for.
 */
const allowList: Record<string, { dir: string; type: keyof typeof types }> = {
  'swagger-ui-bundle.js': { dir: swaggerUiDir, type: 'js' },
  'swagger-ui.css': { dir: swaggerUiDir, type: 'css' },
  'index.css': { dir: swaggerUiDir, type: 'css' },
  'favicon-32x32.png': { dir: swaggerUiDir, type: 'png' },
  'favicon-16x16.png': { dir: swaggerUiDir, type: 'png' },
  'init.js': { dir: ownDir, type: 'js' },
};

interface Asset {
  body: Uint8Array<ArrayBuffer>;
  /** Text assets, compressed once: the bundle is 1.7 MB, about a quarter of that gzipped. */
  gzipped?: Uint8Array<ArrayBuffer>;
  type: string;
  /** A content hash: linked as ?v=, and the (weak) ETag. */
  version: string;
}

const gzipAsync = promisify(gzip);

async function loadAsset(name: string, entry: (typeof allowList)[string]): Promise<[string, Asset]> {
  const body = new Uint8Array(await readFile(path.join(entry.dir, name)));
  const version = createHash('sha256').update(body).digest('hex').slice(0, 12);
  const gzipped = entry.type === 'png' ? undefined : new Uint8Array(await gzipAsync(body));
  return [name, { body, gzipped, type: types[entry.type], version }];
}

// Read on first use and kept: they are the installed package's files, fixed while the process runs.
let loaded: Promise<Map<string, Asset>> | undefined;
function assets(): Promise<Map<string, Asset>> {
  if (!loaded) {
    loaded = Promise.all(Object.entries(allowList).map(([name, entry]) => loadAsset(name, entry))).then(
      (list) => new Map(list),
    );
    // A failed read (a broken install) is not cached: the next request tries again.
    loaded.catch(() => {
      loaded = undefined;
    });
  }
  return loaded;
}

/**
 * Swagger UI sets styles through the DOM (allowed) and shows inline SVG data: images from its
 * stylesheet; it fetches the document and runs "Try it out" requests on this origin only.
 */
export const docsCsp =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const escapeAttr = (s: string) =>
  s.replaceAll('&', '&amp;').replaceAll('"', '&quot;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');

function page(specUrl: string, title: string, v: (name: string) => string): string {
  const asset = (name: string) => `/docs/assets/${name}?v=${v(name)}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeAttr(title)}</title>
<link rel="icon" type="image/png" sizes="32x32" href="${asset('favicon-32x32.png')}">
<link rel="icon" type="image/png" sizes="16x16" href="${asset('favicon-16x16.png')}">
<link rel="stylesheet" href="${asset('swagger-ui.css')}">
<link rel="stylesheet" href="${asset('index.css')}">
</head>
<body>
<noscript><p>This reference needs JavaScript. The OpenAPI document is at <a href="${escapeAttr(specUrl)}">${escapeAttr(specUrl)}</a>.</p></noscript>
<div id="swagger-ui" data-spec-url="${escapeAttr(specUrl)}"></div>
<script src="${asset('swagger-ui-bundle.js')}"></script>
<script src="${asset('init.js')}"></script>
</body>
</html>
`;
}

/** `If-None-Match` holds this version's ETag (weak comparison, as RFC 9110 asks for this header). */
function matches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  const bare = etag.replace(/^W\//, '');
  return ifNoneMatch.split(',').some((t) => {
    const tag = t.trim();
    return tag === '*' || tag.replace(/^W\//, '') === bare;
  });
}

const acceptsGzip = (header: string | undefined) =>
  (header ?? '').split(',').some((part) => {
    const [coding, ...params] = part.trim().split(';');
    return coding?.trim().toLowerCase() === 'gzip' && !params.some((p) => /^\s*q=0(\.0*)?\s*$/.test(p));
  });

/** Mounted at /docs: the page, and its assets under /docs/assets/<name>. Public, like the document. */
export function docsRouter(options: { specUrl: string; title: string }) {
  const router = new Hono();

  router.get('/', async (c) => {
    const all = await assets();
    const html = page(options.specUrl, options.title, (name) => all.get(name)!.version);
    return c.html(html, 200, {
      'content-security-policy': docsCsp,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      // The page links its assets by version: revalidating it is cheap and picks up a new one.
      'cache-control': 'no-cache',
    });
  });

  router.get('/assets/:name', async (c) => {
    const asset = (await assets()).get(c.req.param('name'));
    if (!asset) return c.notFound();
    const etag = `W/"${asset.version}"`;
    const headers: Record<string, string> = {
      etag,
      vary: 'Accept-Encoding',
      'x-content-type-options': 'nosniff',
      // Linked with its own version: cacheable for good. Without (or with an old) ?v=: revalidate.
      'cache-control':
        c.req.query('v') === asset.version ? 'public, max-age=31536000, immutable' : 'no-cache',
    };
    if (matches(c.req.header('if-none-match'), etag)) return c.body(null, 304, headers);
    headers['content-type'] = asset.type;
    if (asset.gzipped && acceptsGzip(c.req.header('accept-encoding'))) {
      headers['content-encoding'] = 'gzip';
      return c.body(asset.gzipped, 200, headers);
    }
    return c.body(asset.body, 200, headers);
  });

  return router;
}
