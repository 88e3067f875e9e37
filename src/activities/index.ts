import { makeClearProcessedFiles } from './clear-processed-files.js';
import { makeCopyTable } from './copy-table.js';
import { makeDeliverWebhook } from './deliver-webhook.js';
import type { ActivityDeps } from './deps.js';
import { makeDiscoverFiles } from './discover-files.js';
import { makeDiscoverTables } from './discover-tables.js';
import { makeDropTable } from './drop-table.js';
import { makeEstimateImpact } from './estimate-impact.js';
import { makeEvaluateCondition } from './evaluate-condition.js';
import { makeFinishConnectionOperation } from './finish-connection-operation.js';
import { makeFinishRun } from './finish-run.js';
import { makeListCachedTables } from './list-cached-tables.js';
import { makeMatchWebhooks } from './match-webhooks.js';
import {
  makeAbandonMemberRefresh,
  makeBeginMemberRefresh,
  makeMemberRefreshOutcome,
} from './member-refresh.js';
import { makeAdmitScheduledOperation, makeFinishOperation, makeRecordStep } from './operations.js';
import { makeProcessFiles } from './process-files.js';
import { makeEstimateReprocess, makeRemoveSelectedFiles } from './reprocess.js';
import { makeRollbackSwap } from './rollback-swap.js';
import { makeSetRunStatus } from './set-run-status.js';
import { makeStartRun } from './start-run.js';
import { makeDiscardShadow, makeExecuteDeletion, makeSwapTables } from './swap.js';
import { makeSwapCachedTable } from './swap-cached-table.js';
import { makeMeasureShadow, makeSetAwaitingApproval } from './swap-checks.js';
import { makeTestConnection } from './test-connection.js';

export type { ActivityDeps } from './deps.js';

export function createActivities(deps: ActivityDeps) {
  return {
    startRun: makeStartRun(deps),
    discoverFiles: makeDiscoverFiles(deps),
    processFiles: makeProcessFiles(deps),
    finishRun: makeFinishRun(deps),
    setRunStatus: makeSetRunStatus(deps),
    clearProcessedFiles: makeClearProcessedFiles(deps),
    dropTable: makeDropTable(deps),
    estimateImpact: makeEstimateImpact(deps),
    recordStep: makeRecordStep(deps),
    finishOperation: makeFinishOperation(deps),
    admitScheduledOperation: makeAdmitScheduledOperation(deps),
    estimateReprocess: makeEstimateReprocess(deps),
    removeSelectedFiles: makeRemoveSelectedFiles(deps),
    swapTables: makeSwapTables(deps),
    discardShadow: makeDiscardShadow(deps),
    executeDeletion: makeExecuteDeletion(deps),
    rollbackSwap: makeRollbackSwap(deps),
    measureShadow: makeMeasureShadow(deps),
    setAwaitingApproval: makeSetAwaitingApproval(deps),
    testConnection: makeTestConnection(deps),
    discoverTables: makeDiscoverTables(deps),
    listCachedTables: makeListCachedTables(deps),
    copyTable: makeCopyTable(deps),
    swapCachedTable: makeSwapCachedTable(deps),
    finishConnectionOperation: makeFinishConnectionOperation(deps),
    beginMemberRefresh: makeBeginMemberRefresh(deps),
    abandonMemberRefresh: makeAbandonMemberRefresh(deps),
    memberRefreshOutcome: makeMemberRefreshOutcome(deps),
    matchWebhooks: makeMatchWebhooks(deps),
    deliverWebhook: makeDeliverWebhook(deps),
    evaluateScheduledCondition: makeEvaluateCondition(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
