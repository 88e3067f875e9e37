import { createRoute, z } from '@hono/zod-openapi';
import { ScheduleAlreadyRunning, ScheduleNotFoundError, ScheduleOverlapPolicy } from '@temporalio/client';
import { type ScheduledOperationInput, scheduledOperationWorkflow } from '../../workflows/scheduled.js';
import { type ApiDeps, newRouter } from '../app.js';
import { ApiError } from '../errors.js';
import { commonErrors, ErrorSchema, IdParam, jsonBody, jsonResponse, notFound } from '../openapi.js';
import { findIngestion } from '../shared/ingestion-access.js';

const ScheduleBody = z
  .object({
    cron: z.string().min(1).max(200).optional().describe('cron expression, e.g. "0 2 * * *"'),
    interval_seconds: z
      .number()
      .int()
      .min(1)
      .max(366 * 24 * 3600)
      .optional(),
    timezone: z.string().min(1).max(64).default('UTC'),
    operation: z.enum(['run', 'full_refresh']).default('run'),
    strategy: z.enum(['drop', 'swap']).default('drop').describe('for full_refresh'),
    paused: z.boolean().default(false),
  })
  .refine((b) => (b.cron === undefined) !== (b.interval_seconds === undefined), {
    message: 'give exactly one of cron or interval_seconds',
    path: ['cron'],
  })
  .refine((b) => Intl.supportedValuesOf('timeZone').includes(b.timezone) || b.timezone === 'UTC', {
    message: 'unknown IANA time zone',
    path: ['timezone'],
  })
  .openapi('Schedule');

const ScheduleResponse = z.record(z.string(), z.unknown()).openapi('ScheduleState');

/** The Temporal Schedule of an ingestion: visible (and pausable) in the Temporal UI under this id. */
export const scheduleId = (ingestionId: string) => `ingestion-${ingestionId}`;

export function schedulesRouter(deps: ApiDeps) {
  const router = newRouter();
  const requireWrite = (perms: string[]) => {
    if (!perms.includes('ingestion:write')) {
      throw new ApiError(403, 'INSUFFICIENT_PERMISSIONS', 'This token lacks the ingestion:write permission');
    }
  };

  async function describe(ingestionId: string) {
    const d = await deps.temporal.schedule.getHandle(scheduleId(ingestionId)).describe();
    const settings = (d.memo?.settings ?? {}) as Record<string, unknown>;
    return {
      schedule_id: d.scheduleId,
      ingestion_id: ingestionId,
      ...settings,
      paused: d.state.paused,
      next_action_times: d.info.nextActionTimes.slice(0, 3).map((t) => t.toISOString()),
      recent_actions: d.info.recentActions.slice(-5).map((a) => ({
        scheduled_at: a.scheduledAt.toISOString(),
        workflow_id: a.action.workflow.workflowId,
      })),
    };
  }

  router.openapi(
    createRoute({
      method: 'put',
      path: '/ingestions/{id}/schedule',
      summary:
        'Create or replace the ingestion’s schedule (a Temporal Schedule; never overlaps a running operation)',
      request: { params: IdParam, body: jsonBody(ScheduleBody) },
      responses: {
        200: jsonResponse(ScheduleResponse, 'Schedule'),
        ...commonErrors,
        ...notFound,
        403: jsonResponse(ErrorSchema, 'INSUFFICIENT_PERMISSIONS'),
      },
    }),
    async (c) => {
      const principal = c.get('principal');
      requireWrite(principal.permissions);
      if (
        c.req.valid('json').operation === 'full_refresh' &&
        !principal.permissions.includes('ingestion:refresh')
      ) {
        throw new ApiError(
          403,
          'INSUFFICIENT_PERMISSIONS',
          'Scheduling full refreshes needs ingestion:refresh',
        );
      }
      const ingestion = await findIngestion(deps.db, principal.tenantId, c.req.valid('param').id);
      const body = c.req.valid('json');
      const spec = {
        ...(body.cron
          ? { cronExpressions: [body.cron] }
          : { intervals: [{ every: body.interval_seconds! * 1000 }] }),
        timezone: body.timezone,
      };
      const action = {
        type: 'startWorkflow' as const,
        workflowType: scheduledOperationWorkflow,
        workflowId: `ingestion/${ingestion.id}/scheduled`,
        taskQueue: deps.taskQueue,
        args: [
          {
            ingestionId: ingestion.id,
            operation: body.operation,
            strategy: body.strategy,
            run: deps.runDefaults,
          },
        ] as [ScheduledOperationInput],
      };
      const policies = { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 minute' };
      const id = scheduleId(ingestion.id);
      const options = {
        scheduleId: id,
        spec,
        action,
        policies,
        state: { paused: body.paused, note: `autoloader ingestion ${ingestion.name}` },
        // The settings as the user gave them: Temporal compiles cron strings into calendars.
        memo: { settings: { ...body, paused: undefined } },
      };
      try {
        await deps.temporal.schedule.create(options);
      } catch (err) {
        if (!(err instanceof ScheduleAlreadyRunning)) throw err;
        // PUT replaces: a schedule's memo cannot be updated in place.
        await deps.temporal.schedule.getHandle(id).delete();
        await deps.temporal.schedule.create(options);
      }
      return c.json(await describe(ingestion.id), 200);
    },
  );

  router.openapi(
    createRoute({
      method: 'get',
      path: '/ingestions/{id}/schedule',
      summary: 'The ingestion’s schedule, next times and recent actions',
      request: { params: IdParam },
      responses: { 200: jsonResponse(ScheduleResponse, 'Schedule'), ...commonErrors, ...notFound },
    }),
    async (c) => {
      const ingestion = await findIngestion(deps.db, c.get('principal').tenantId, c.req.valid('param').id);
      try {
        return c.json(await describe(ingestion.id), 200);
      } catch (err) {
        if (err instanceof ScheduleNotFoundError)
          throw new ApiError(404, 'SCHEDULE_NOT_FOUND', 'This ingestion has no schedule');
        throw err;
      }
    },
  );

  router.openapi(
    createRoute({
      method: 'delete',
      path: '/ingestions/{id}/schedule',
      summary: 'Remove the schedule (a running operation it started is not affected)',
      request: { params: IdParam },
      responses: { 204: { description: 'Removed' }, ...commonErrors, ...notFound },
    }),
    async (c) => {
      requireWrite(c.get('principal').permissions);
      const ingestion = await findIngestion(deps.db, c.get('principal').tenantId, c.req.valid('param').id);
      try {
        await deps.temporal.schedule.getHandle(scheduleId(ingestion.id)).delete();
      } catch (err) {
        if (err instanceof ScheduleNotFoundError)
          throw new ApiError(404, 'SCHEDULE_NOT_FOUND', 'This ingestion has no schedule');
        throw err;
      }
      return c.body(null, 204);
    },
  );

  return router;
}
