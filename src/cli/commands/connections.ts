import type { Command } from 'commander';
import type { CliApp, Ctx } from '../context.js';
import { CliError, EXIT_ERROR, EXIT_OK, type ExitCode } from '../errors.js';
import { fmtValue, table } from '../format.js';
import { printJson } from '../output.js';
import { resolveConnectionId } from '../resolve.js';
import type { ConnectionJson, ConnectionTestJson, Page } from '../types.js';

export interface ConnectionOptions {
  name: string;
  kind: string;
  path?: string;
  endpoint?: string;
  region?: string;
  forcePathStyle?: boolean;
  accessKeyIdEnv?: string;
  secretAccessKeyEnv?: string;
  sessionTokenEnv?: string;
}

/** POST /connections's body. Credentials are env-var *names*: the server reads them, never stores them. */
export function connectionBody(opts: ConnectionOptions): Record<string, unknown> {
  if (opts.kind === 'local') {
    if (!opts.path) throw new CliError('a local connection needs --path <folder>');
    return { name: opts.name, kind: 'local', config: { path: opts.path } };
  }
  if (opts.kind === 's3') {
    const config: Record<string, unknown> = {};
    if (opts.endpoint) config.endpoint = opts.endpoint;
    if (opts.region) config.region = opts.region;
    if (opts.forcePathStyle) config.force_path_style = true;
    if (opts.accessKeyIdEnv) config.access_key_id_env = opts.accessKeyIdEnv;
    if (opts.secretAccessKeyEnv) config.secret_access_key_env = opts.secretAccessKeyEnv;
    if (opts.sessionTokenEnv) config.session_token_env = opts.sessionTokenEnv;
    return { name: opts.name, kind: 's3', config };
  }
  throw new CliError(`--kind must be s3 or local, not "${opts.kind}"`);
}

const configText = (config: Record<string, unknown>) =>
  Object.entries(config)
    .map(([k, v]) => `${k}=${fmtValue(v)}`)
    .join(' ');

async function create(ctx: Ctx, opts: ConnectionOptions): Promise<ExitCode> {
  const body = connectionBody(opts);
  const { body: conn } = await ctx.api.request<ConnectionJson>('POST', '/connections', { body });
  if (ctx.json) printJson(ctx.io, conn);
  else ctx.io.out(`Created connection ${conn.id} (${conn.name}, ${conn.kind})\n`);
  return EXIT_OK;
}

async function list(ctx: Ctx): Promise<ExitCode> {
  const { body } = await ctx.api.request<Page<ConnectionJson>>('GET', '/connections');
  if (ctx.json) printJson(ctx.io, body);
  else if (body.items.length === 0) ctx.io.out('No connections yet (autoloader connections create --help)\n');
  else {
    ctx.io.out(
      table(
        ['ID', 'NAME', 'KIND', 'CREATED', 'CONFIG'],
        body.items.map((c) => [c.id, c.name, c.kind, c.created_at, configText(c.config)]),
      ),
    );
  }
  return EXIT_OK;
}

async function test(ctx: Ctx, ref: string): Promise<ExitCode> {
  const id = await resolveConnectionId(ctx.api, ref);
  const { body } = await ctx.api.request<ConnectionTestJson>(
    'POST',
    `/connections/${encodeURIComponent(id)}/test`,
  );
  if (ctx.json) printJson(ctx.io, body);
  else {
    ctx.io.out(
      `${table(
        ['CHECK', 'OK', 'DETAIL'],
        body.checks.map((c) => [c.name, c.ok ? 'ok' : 'FAILED', c.detail ?? '']),
      )}${body.ok ? 'Connection works\n' : 'Connection has problems\n'}`,
    );
  }
  return body.ok ? EXIT_OK : EXIT_ERROR;
}

export function registerConnectionCommands(program: Command, app: CliApp): void {
  const connections = program
    .command('connections')
    .description('Connections to object storage or local folders');
  connections
    .command('create')
    .description('Create a connection (s3 or local)')
    .requiredOption('--name <name>', 'a name unique in your tenant')
    .requiredOption('--kind <kind>', 's3 or local')
    .option('--path <folder>', 'local: the folder (must be under the server’s LOCAL_SOURCE_ROOTS)')
    .option('--endpoint <url>', 's3: S3-compatible endpoint (omit for AWS)')
    .option('--region <region>', 's3: region')
    .option('--force-path-style', 's3: path-style addressing (MinIO and most S3-compatible stores)')
    .option('--access-key-id-env <VAR>', 's3: name of the env var holding the access key id')
    .option('--secret-access-key-env <VAR>', 's3: name of the env var holding the secret key')
    .option('--session-token-env <VAR>', 's3: name of the env var holding a session token')
    .action((opts: ConnectionOptions, cmd: Command) => app.exec(cmd, (ctx) => create(ctx, opts)));
  connections
    .command('list')
    .description('List connections')
    .action((_opts: object, cmd: Command) => app.exec(cmd, list));
  connections
    .command('test')
    .description('Check that the server can reach and read a connection')
    .argument('<connection>', 'connection id or name')
    .action((ref: string, _opts: object, cmd: Command) => app.exec(cmd, (ctx) => test(ctx, ref)));
}
