import { ApplicationFailure } from '@temporalio/activity';
import { AppError } from '../domain/errors.js';
import { SecretRefError } from '../secrets/refs.js';
import { type ConnectionCheck, type ConnectionKind, sourceKind, type TestTarget } from '../sources/index.js';
import type { ActivityDeps } from './deps.js';

/** Runs a connection's test checks where the stores are: in a worker, under the tenant's rules. */
export function makeTestConnection({ sql, sources }: ActivityDeps) {
  return async function testConnection(input: {
    connectionId: string;
    target: TestTarget;
  }): Promise<ConnectionCheck[]> {
    const [row] = await sql<{ tenantId: string; kind: ConnectionKind; config: unknown }[]>`
      select tenant_id as "tenantId", kind, config from autoloader.connections where id = ${input.connectionId}`;
    if (!row)
      throw ApplicationFailure.nonRetryable(
        `connection ${input.connectionId} not found`,
        'ConnectionNotFound',
      );
    const kind = sourceKind(row.kind);
    const ctx = await sources(row.tenantId);
    const parsed = kind.configSchema.safeParse(row.config);
    if (!parsed.success) {
      return [
        {
          name: 'configuration',
          ok: false,
          detail: `the stored configuration is not valid: ${parsed.error.issues[0]?.message}`,
        },
      ];
    }
    try {
      await kind.checkConfig(parsed.data, ctx, { network: false });
    } catch (err) {
      // A reference the tenant may not use is the first failing check, not an error of the test.
      if (err instanceof SecretRefError || err instanceof AppError) {
        return [{ name: 'configuration', ok: false, detail: err.message }];
      }
      throw err;
    }
    return kind.test(parsed.data, ctx, input.target);
  };
}
