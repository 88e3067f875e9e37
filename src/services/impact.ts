import type { SourceImpact } from '../activities/estimate-impact.js';
import type { OperationType } from '../db/schema/index.js';

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
  const loads = type !== 'drop_table' && autoRun;
  const files = !loads ? 0 : type === 'full_refresh' ? src.filesTotal : src.filesNew;
  const bytes = !loads ? 0 : type === 'full_refresh' ? src.bytesTotal : src.bytesNew;
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
  const w: string[] = [];
  if (type === 'full_refresh') {
    w.push(
      `This operation will reprocess ALL ${fmt(impact.files_to_process)} files (${impact.estimated_data_size_gb} GB)`,
    );
  }
  if (impact.estimated_cost_usd > 100)
    w.push(`HIGH COST OPERATION: Estimated $${impact.estimated_cost_usd.toFixed(2)}`);
  if (impact.files_to_process > 1000)
    w.push(`LARGE OPERATION: Processing ${fmt(impact.files_to_process)} files`);
  if (src.table.table_existed && type !== 'reprocess') {
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
  const notes: string[] = [];
  if (type === 'fresh_start') {
    notes.push('Table dropped and recreated');
    notes.push(`Only NEW files (added since last run) will be processed: ${fmt(impact.files_to_process)}`);
    notes.push(
      `Processed file history preserved (${fmt(src.historyFiles)} files remain marked as processed)`,
    );
  }
  if (type === 'reprocess') {
    notes.push(
      `Only the rows of the ${fmt(impact.files_to_process)} selected files are replaced; every other row stays untouched`,
    );
  }
  if (type === 'drop_table') {
    notes.push(
      `Processed file history NOT affected (${fmt(src.historyFiles)} files still marked as processed)`,
    );
    notes.push('No ingestion run triggered');
    notes.push('Table will be recreated on next run');
  }
  if (type !== 'drop_table' && !autoRun)
    notes.push('auto_run=false: no run triggered; start one with POST /run');
  return notes;
}
