import { z } from '@hono/zod-openapi';
import { AppError } from '../../domain/errors.js';
import { conditionLimits } from '../../refresh/condition.js';
import { refreshStrategies } from '../../refresh/modes.js';
import { findIngestion } from '../../services/ingestions.js';
import { deleteSchedule, getSchedule, type ScheduleView, setSchedule } from '../../services/schedules.js';
import { commonErrors, ErrorSchema, IdParam, jsonBody, jsonResponse, notFound } from '../openapi.js';
import { type ApiDeps, apiRoute, newRouter } from '../router.js';

const scheduleFields = {
  cron: z.string().min(1).max(200).optional().describe('cron expression, e.g. "0 2 * * *"'),
  interval_seconds: z
    .number()
    .int()
    .min(1)
    .max(366 * 24 * 3600)
    .optional(),
  timezone: z.string().min(1).max(64).default('UTC'),
  strategy: z.enum(refreshStrategies).default('drop').describe('for full_refresh'),
  paused: z.boolean().default(false),
};

type ScheduleFields = { cron?: string; interval_seconds?: number; timezone: string };
const oneOfCronOrInterval = (b: ScheduleFields) =>
  (b.cron === undefined) !== (b.interval_seconds === undefined);
const knownZone = (b: ScheduleFields) =>
  Intl.supportedValuesOf('timeZone').includes(b.timezone) || b.timezone === 'UTC';

const ScheduleBody = z
  .strictObject({ ...scheduleFields, operation: z.enum(['run', 'full_refresh']).default('run') })
  .refine(oneOfCronOrInterval, { message: 'give exactly one of cron or interval_seconds', path: ['cron'] })
  .refine(knownZone, { message: 'unknown IANA time zone', path: ['timezone'] })
  .openapi('Schedule');

/** Seed 001's `refresh_schedule`: the ingestion's second schedule, of full refreshes. */
export const RefreshScheduleBody = z
  .strictObject({
    ...scheduleFields,
    operation: z
      .enum(['full_refresh', 'refresh_if'])
      .default('full_refresh')
      .describe('refresh_if: a full refresh on the ticks where `condition` holds (as POST /refresh-if)'),
    condition: z
      .string()
      .min(1)
      .max(conditionLimits.maxLength)
      .optional()
      .describe('refresh_if only: an expression over the facts of POST /ingestions/{id}/refresh-if'),
  })
  .refine(oneOfCronOrInterval, { message: 'give exactly one of cron or interval_seconds', path: ['cron'] })
  .refine((b) => (b.operation === 'refresh_if') === (b.condition !== undefined), {
    message: 'refresh_if needs a condition, and only refresh_if takes one',
    path: ['condition'],
  })
  .refine(knownZone, { message: 'unknown IANA time zone', path: ['timezone'] })
  .openapi('RefreshSchedule');

export const ScheduleResponse = z
  .object({
    schedule_id: z.string(),
    ingestion_id: z.string(),
    cron: z.string().optional(),
    interval_seconds: z.number().optional(),
    timezone: z.string().optional(),
    operation: z.string().optional(),
    strategy: z.string().optional(),
    paused: z.boolean(),
    next_action_times: z.array(z.string()),
    recent_actions: z.array(z.object({ scheduled_at: z.string(), workflow_id: z.string() })),
  })
  .openapi('ScheduleState');

export function toScheduleJson(v: ScheduleView) {
  return {
    schedule_id: v.scheduleId,
    ingestion_id: v.ingestionId,
    ...v.settings,
    paused: v.paused,
    next_action_times: v.nextActionTimes.map((t) => t.toISOString()),
    recent_actions: v.recentActions.map((a) => ({
      scheduled_at: a.scheduledAt.toISOString(),
      workflow_id: a.workflowId,
    })),
  };
}

export function schedulesRouter(deps: ApiDeps) {
  const router = newRouter();

  router.openapi(
    apiRoute('ingestion:write', {
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
      const body = c.req.valid('json');
      // A schedule of full refreshes refreshes: it needs what a full refresh needs, too.
      if (body.operation === 'full_refresh' && !principal.permissions.includes('ingestion:refresh')) {
        throw new AppError('INSUFFICIENT_PERMISSIONS', 'Scheduling full refreshes needs ingestion:refresh', {
          required_permission: 'ingestion:refresh',
        });
      }
      const ingestion = await findIngestion(deps, principal.tenantId, c.req.valid('param').id);
      return c.json(toScheduleJson(await setSchedule(deps, ingestion, body)), 200);
    },
  );

  router.openapi(
    apiRoute('ingestion:read', {
      method: 'get',
      path: '/ingestions/{id}/schedule',
      summary: 'The ingestion’s schedule, next times and recent actions',
      request: { params: IdParam },
      responses: { 200: jsonResponse(ScheduleResponse, 'Schedule'), ...commonErrors, ...notFound },
    }),
    async (c) => {
      const ingestion = await findIngestion(deps, c.get('principal').tenantId, c.req.valid('param').id);
      return c.json(toScheduleJson(await getSchedule(deps, ingestion.id)), 200);
    },
  );

  router.openapi(
    apiRoute('ingestion:write', {
      method: 'delete',
      path: '/ingestions/{id}/schedule',
      summary: 'Remove the schedule (a running operation it started is not affected)',
      request: { params: IdParam },
      responses: { 204: { description: 'Removed' }, ...commonErrors, ...notFound },
    }),
    async (c) => {
      const ingestion = await findIngestion(deps, c.get('principal').tenantId, c.req.valid('param').id);
      await deleteSchedule(deps, ingestion.id);
      return c.body(null, 204);
    },
  );

  router.openapi(
    apiRoute('ingestion:refresh', {
      method: 'put',
      path: '/ingestions/{id}/refresh-schedule',
      summary:
        'Create or replace the ingestion’s refresh schedule (seed 001’s refresh_schedule), beside its run schedule',
      request: { params: IdParam, body: jsonBody(RefreshScheduleBody) },
      responses: { 200: jsonResponse(ScheduleResponse, 'Refresh schedule'), ...commonErrors, ...notFound },
    }),
    async (c) => {
      const ingestion = await findIngestion(deps, c.get('principal').tenantId, c.req.valid('param').id);
      return c.json(toScheduleJson(await setSchedule(deps, ingestion, c.req.valid('json'), 'refresh')), 200);
    },
  );

  router.openapi(
    apiRoute('ingestion:read', {
      method: 'get',
      path: '/ingestions/{id}/refresh-schedule',
      summary: 'The ingestion’s refresh schedule, next times and recent actions',
      request: { params: IdParam },
      responses: { 200: jsonResponse(ScheduleResponse, 'Refresh schedule'), ...commonErrors, ...notFound },
    }),
    async (c) => {
      const ingestion = await findIngestion(deps, c.get('principal').tenantId, c.req.valid('param').id);
      return c.json(toScheduleJson(await getSchedule(deps, ingestion.id, 'refresh')), 200);
    },
  );

  router.openapi(
    apiRoute('ingestion:refresh', {
      method: 'delete',
      path: '/ingestions/{id}/refresh-schedule',
      summary: 'Remove the refresh schedule (the run schedule is not affected)',
      request: { params: IdParam },
      responses: { 204: { description: 'Removed' }, ...commonErrors, ...notFound },
    }),
    async (c) => {
      const ingestion = await findIngestion(deps, c.get('principal').tenantId, c.req.valid('param').id);
      await deleteSchedule(deps, ingestion.id, 'refresh');
      return c.body(null, 204);
    },
  );

  return router;
}
