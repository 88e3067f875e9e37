import type { SourceImpact } from '../activities/estimate-impact.js';
import { launchesRun, type OperationType, refreshModes } from '../refresh/modes.js';

export interface CostModel {
  costPerGbUsd: number;
  throughputMbPerS: number;
  secondsPerFile: number;
}

export interface Impact {
  files_to_process: number;
  files_skipped: number;
  estimated_data_size_bytes: number;
  estimated_data_size_gb: number;
  estimated_cost_usd: number;
  estimated_duration_minutes: number;
}

const GB = 1024 ** 3;
const MB = 1024 ** 2;

/** Seed 001's impact block, from real discovery figures and the configured cost/duration model. */
export function computeImpact(
  type: OperationType,
  autoRun: boolean,
  src: SourceImpact,
  model: CostModel,
): Impact {
  const mode = refreshModes[type];
  const loads = launchesRun(mode, autoRun);
  const all = mode.run?.files === 'all';
  const files = !loads ? 0 : all ? src.filesTotal : src.filesNew;
  const bytes = !loads ? 0 : all ? src.bytesTotal : src.bytesNew;
  const seconds = bytes / MB / model.throughputMbPerS + files * model.secondsPerFile;
  return {
    files_to_process: files,
    files_skipped: loads ? src.filesTotal - files : src.filesTotal,
    estimated_data_size_bytes: bytes,
    estimated_data_size_gb: Math.round((bytes / GB) * 1000) / 1000,
    estimated_cost_usd: Math.round((bytes / GB) * model.costPerGbUsd * 100) / 100,
    estimated_duration_minutes: files === 0 ? 0 : Math.max(1, Math.ceil(seconds / 60)),
  };
}

const fmt = (n: number) => n.toLocaleString('en-US');

/** Seed 001's warnings: high cost above $100, large above 1,000 files, and what gets deleted. */
export function impactWarnings(type: OperationType, impact: Impact, src: SourceImpact): string[] {
  const mode = refreshModes[type];
  const w: string[] = [];
  if (mode.run?.files === 'all') {
    w.push(
      `This operation will reprocess ALL ${fmt(impact.files_to_process)} files (${impact.estimated_data_size_gb} GB)`,
    );
  }
  if (impact.estimated_cost_usd > 100)
    w.push(`HIGH COST OPERATION: Estimated $${impact.estimated_cost_usd.toFixed(2)}`);
  if (impact.files_to_process > 1000)
    w.push(`LARGE OPERATION: Processing ${fmt(impact.files_to_process)} files`);
  if (src.table.table_existed && mode.deletesTable) {
    w.push(
      `Current table ${src.table.table_name} (${src.table.table_size_gb} GB, ${fmt(src.table.row_count ?? 0)} rows) will be deleted`,
    );
  }
  return w;
}

export function impactNotes(
  type: OperationType,
  autoRun: boolean,
  impact: Impact,
  src: SourceImpact,
): string[] {
  const mode = refreshModes[type];
  const notes = mode.notes({
    filesToProcess: fmt(impact.files_to_process),
    historyFiles: fmt(src.historyFiles),
  });
  if (mode.run !== null && !autoRun) notes.push('auto_run=false: no run triggered; start one with POST /run');
  return notes;
}
