export { clearProcessedFilesWorkflow } from './clear-processed-files.js';
export { connectionTestWorkflow } from './connection-test.js';
export { connectionDataRefreshWorkflow, tableDataRefreshWorkflow } from './data-refresh.js';
export { ingestionRunWorkflow } from './ingestion-run.js';
export { pendingDeletionWorkflow } from './pending-deletion.js';
export { estimateImpactWorkflow, refreshWorkflow } from './refresh.js';
export { scheduledOperationWorkflow } from './scheduled.js';
export { schemaRefreshWorkflow } from './schema-refresh.js';
export { webhookDeliveryWorkflow } from './webhook-delivery.js';
