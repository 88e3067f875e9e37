import { WorkflowUpdateFailedError } from '@temporalio/client';
import type { Principal } from '../auth/tokens.js';
import { AppError } from '../domain/errors.js';
import { abortOperationUpdate, approveOperationUpdate } from '../workflows/approval.js';
import type { ServiceDeps } from './deps.js';
import { getOperation, type OperationView } from './records.js';

const notAwaiting = (op: { id: string; status: string }) =>
  new AppError('NOT_AWAITING_APPROVAL', `Operation ${op.id} is ${op.status}, not awaiting approval`, {
    status: op.status,
    help: 'Only a swap full refresh whose checks failed waits for approval (status awaiting_approval)',
  });

/**
 * POST /operations/{id}/approve and /abort: the decision on a swap full refresh waiting in
 * `awaiting_approval`, delivered to its workflow as a Temporal update (refused there too if it is no
 * longer waiting, so two deciders cannot both win). Audited. Answers with the operation; an
 * approved one goes on to the swap, an aborted one discards its new version and ends `cancelled`.
 */
export async function decideOperation(
  deps: Pick<ServiceDeps, 'sql' | 'temporal'>,
  principal: Principal,
  operationId: string,
  decision: { approve: boolean; reason?: string },
): Promise<OperationView> {
  const op = await getOperation(deps, principal.tenantId, operationId);
  if (op.status !== 'awaiting_approval') throw notAwaiting(op);
  const [row] = await deps.sql<{ workflowId: string }[]>`
    select workflow_id as "workflowId" from autoloader.operations where id = ${operationId}`;
  const handle = deps.temporal.workflow.getHandle(row!.workflowId);
  try {
    await handle.executeUpdate(decision.approve ? approveOperationUpdate : abortOperationUpdate, {
      args: [{ by: principal.subject, ...(decision.reason ? { reason: decision.reason } : {}) }],
    });
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError)
      throw notAwaiting(await getOperation(deps, principal.tenantId, operationId));
    throw err;
  }
  await deps.sql`
    insert into autoloader.audit_events (tenant_id, subject, action, ingestion_id, operation_id, dry_run, impact, result)
    values (${principal.tenantId}, ${principal.subject}, ${decision.approve ? 'approve' : 'abort'}, ${op.ingestionId},
            ${operationId}, false, ${deps.sql.json({ reason: decision.reason ?? null })}, 'accepted')`;
  return getOperation(deps, principal.tenantId, operationId);
}
