import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basePath } from './session.js';

interface Asset {
  body: string;
  type: string;
  version: string;
}

const types = { css: 'text/css; charset=utf-8', js: 'text/javascript; charset=utf-8' } as const;

/**
 * The console's two static files, read once at start. They are linked with a content hash in the
 * query string, so a browser may cache them for good and still picks up a new version at once.
 */
const assets = new Map<string, Asset>(
  (['console.css', 'console.js'] as const).map((name) => {
    const body = readFileSync(new URL(`./assets/${name}`, import.meta.url), 'utf8');
    const ext = name.endsWith('.css') ? 'css' : 'js';
    const version = createHash('sha256').update(body).digest('hex').slice(0, 12);
    return [name, { body, type: types[ext], version }];
  }),
);

export function assetUrl(name: 'console.css' | 'console.js'): string {
  return `${basePath}/assets/${name}?v=${assets.get(name)!.version}`;
}

export const findAsset = (name: string): Asset | undefined => assets.get(name);
