/**
 * The production build: the service compiled to JavaScript in `dist/` (tsc), with the files it
 * reads at run time beside it (migrations, the console's assets, the API docs' script), and the
 * workflows bundled once into `dist/workflow-bundle.js`, which `node dist/bin/worker.js` loads
 * instead of bundling them at every start. Run with `npm run build`; then `node dist/bin/api.js`,
 * `node dist/bin/worker.js`, `node dist/bin/token.js` — plain `node`, no tsx or npm in the process tree.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode } from '@temporalio/worker';
import { quietBundlerLogger, toLogger } from '../src/dev/service.js';

const root = fileURLToPath(new URL('../', import.meta.url));
const log = toLogger((line) => process.stderr.write(`[build] ${line}\n`));

rmSync(`${root}dist`, { recursive: true, force: true });
log.info('compiling src/ to dist/ (tsc -p tsconfig.build.json)');
execFileSync(process.execPath, [`${root}node_modules/typescript/bin/tsc`, '-p', `${root}tsconfig.build.json`], {
  stdio: 'inherit',
});
// What the compiled code reads beside itself (new URL('./…', import.meta.url)).
for (const dir of ['db/migrations', 'ui/assets', 'api/docs'])
  cpSync(`${root}src/${dir}`, `${root}dist/${dir}`, { recursive: true });
log.info('bundling the workflows into dist/workflow-bundle.js');
const { code } = await bundleWorkflowCode({
  workflowsPath: `${root}dist/workflows/index.js`,
  logger: quietBundlerLogger(log),
});
writeFileSync(`${root}dist/workflow-bundle.js`, code);
log.info('done: node dist/bin/api.js, node dist/bin/worker.js, node dist/bin/token.js');
