export { clearProcessedFilesWorkflow } from './clear-processed-files.js';
export { ingestionRunWorkflow } from './ingestion-run.js';
export { estimateImpactWorkflow, refreshWorkflow } from './refresh.js';
