/**
 * `npm run token -- --tenant <id> [--permissions a,b] [--name n] [--expires-days n]`: issues an API
 * token straight in the state database (DATABASE_URL), for the operator's first `admin` token in
 * production, where `npm start`'s development token does not exist. The tenant is created with the
 * default (empty) policy when it does not exist yet; an existing tenant's policy is left alone.
 * The token is printed once on stdout (only its hash is stored).
 */
import { parseArgs } from 'node:util';
import { type Permission, permissions } from '../auth/tokens.js';
import { loadConfig } from '../config.js';
import { createDb } from '../db/client.js';
import { migrate } from '../db/migrate.js';
import { tenants } from '../db/schema/index.js';
import { issueToken } from '../services/admin.js';
import { tenantPolicySchema } from '../tenancy/policy.js';

const usage = `usage: npm run token -- --tenant <id> [--permissions ${permissions.join(',')}] [--name <name>] [--expires-days <n>]`;
const tenantIdPattern = /^[a-z0-9][a-z0-9_-]{0,62}$/;

function fail(message: string): never {
  process.stderr.write(`${message}\n${usage}\n`);
  process.exit(2);
}

function parseTokenArgs(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      tenant: { type: 'string' },
      permissions: { type: 'string', default: 'admin' },
      name: { type: 'string', default: 'operator' },
      'expires-days': { type: 'string' },
    },
  });
  if (!values.tenant || !tenantIdPattern.test(values.tenant))
    throw new Error('--tenant: a tenant id (lower-case letters, digits, _ and -)');
  const wanted = values.permissions.split(',').map((p) => p.trim());
  const unknown = wanted.filter((p) => !(permissions as readonly string[]).includes(p));
  if (unknown.length > 0 || wanted.length === 0)
    throw new Error(`--permissions: unknown ${unknown.join(', ')}; known: ${permissions.join(', ')}`);
  let expiresAt: Date | null = null;
  if (values['expires-days'] !== undefined) {
    const days = Number(values['expires-days']);
    if (!Number.isInteger(days) || days < 1 || days > 3650)
      throw new Error('--expires-days: a whole number of days, 1 to 3650');
    expiresAt = new Date(Date.now() + days * 86_400_000);
  }
  return {
    tenantId: values.tenant,
    name: values.name,
    permissions: wanted as Permission[],
    expiresAt,
  };
}

async function main(): Promise<void> {
  let args: ReturnType<typeof parseTokenArgs>;
  try {
    args = parseTokenArgs(process.argv.slice(2));
  } catch (err) {
    fail(err instanceof Error ? err.message : String(err));
  }
  const config = loadConfig();
  if (!config.databaseUrl) fail('DATABASE_URL is not set: the token is written to the state database');
  await migrate(config.databaseUrl);
  const { db, close } = createDb(config.databaseUrl, { max: 1, applicationName: 'autoloader-token' });
  try {
    await db
      .insert(tenants)
      .values({ id: args.tenantId, name: args.tenantId, policy: tenantPolicySchema.parse({}) })
      .onConflictDoNothing();
    const { id, token } = await issueToken({ db }, { ...args, subject: `cli:${args.name}` });
    process.stderr.write(
      `token ${id} for tenant ${args.tenantId} (${args.permissions.join(', ')})` +
        `${args.expiresAt ? `, expires ${args.expiresAt.toISOString()}` : ''} — shown once:\n`,
    );
    process.stdout.write(`${token}\n`);
  } finally {
    await close();
  }
}

await main();
