import { defineUpdate } from '@temporalio/workflow';

/**
 * Approve or abort a swap full refresh waiting in `awaiting_approval` (issue 11's checks before the
 * swap): Temporal updates, so the caller hears at once whether the operation was waiting. A refused
 * one fails its validator, and the operation is left as it was.
 */
export interface ApprovalDecision {
  /** The token's subject, for the operation's steps and the audit log. */
  by: string;
  reason?: string;
}

export const approveOperationUpdate = defineUpdate<void, [ApprovalDecision]>('approveOperation');
export const abortOperationUpdate = defineUpdate<void, [ApprovalDecision]>('abortOperation');
