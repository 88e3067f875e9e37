import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project's own folder (where package.json is): its files are never a tenant's to read. */
export const projectRoot = fileURLToPath(new URL('../../', import.meta.url)).replace(/\/$/, '');

/** The shipped sample data: the one folder inside the project a tenant may be given. */
export const samplesRoot = path.join(projectRoot, 'samples');

const contains = (outer: string, inner: string) =>
  inner === outer || inner.startsWith(outer.endsWith(path.sep) ? outer : outer + path.sep);

/**
 * Why a folder may not be a tenant's local root, or undefined when it may: it must not overlap the
 * service's data directory (tokens, the Postgres cluster) nor contain the project, and inside the
 * project only samples/ is allowed. Paths are compared resolved (callers pass real paths where they
 * can; the stores check realpath again on every open).
 */
export function rootProblem(root: string, dataDir: string): string | undefined {
  const r = path.resolve(root);
  const d = path.resolve(dataDir);
  if (contains(r, d) || contains(d, r)) return `${r} overlaps the service's data directory ${d}`;
  if (contains(r, projectRoot)) return `${r} contains the service's own files (${projectRoot})`;
  if (contains(projectRoot, r) && !contains(samplesRoot, r))
    return `${r} is inside the service's own files; only ${samplesRoot} may be shared from there`;
  return undefined;
}
