import { Cron } from 'cdk8s';
import { ConfigError } from './errors';

const FIELDS: Array<[string, number, number]> = [['minute', 0, 59], ['hour', 0, 23], ['day of month', 1, 31], ['month', 1, 12], ['day of week', 0, 7]];
const MACRO_FIELDS: Record<string, string> = {
  '@yearly': '0 0 1 1 *', '@annually': '0 0 1 1 *', '@monthly': '0 0 1 * *', '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *', '@midnight': '0 0 * * *', '@hourly': '0 * * * *',
};
const MACROS = Object.keys(MACRO_FIELDS);

/** Checks a CronJob schedule the way Kubernetes reads it (five fields or a macro) and returns it as a cdk8s Cron. */
export function parseCron(schedule: string, key: string): Cron {
  const [minute, hour, day, month, weekDay] = checkCron(schedule, key).split(' ');
  return Cron.schedule({ minute, hour, day, month, weekDay });
}

function checkCron(schedule: string, key: string): string {
  const fail = (why: string) => new ConfigError(`${key} must be a cron schedule of five fields (minute hour day-of-month month day-of-week, e.g. '0 2 * * *') or a macro (${MACROS.join(', ')}); ${why}; got ${JSON.stringify(schedule)}`, key);
  if (MACROS.includes(schedule.trim())) return MACRO_FIELDS[schedule.trim()];
  const fields = schedule.trim().split(/\s+/);
  if (fields.length !== 5) throw fail(`it has ${fields.length} field(s)`);
  fields.forEach((field, i) => {
    const [name, min, max] = FIELDS[i];
    for (const part of field.split(',')) {
      const m = /^(\*|(\d+)(?:-(\d+))?)(?:\/(\d+))?$/.exec(part);
      if (!m) throw fail(`the ${name} field has ${JSON.stringify(part)}`);
      const numbers = [m[2], m[3]].filter((n) => n !== undefined).map(Number);
      if (numbers.some((n) => n < min || n > max)) throw fail(`the ${name} field must stay within ${min}-${max}`);
      if (m[4] !== undefined && Number(m[4]) === 0) throw fail(`the ${name} field has a step of 0`);
    }
  });
  return fields.join(' ');
}

/**
 * The longest time, in seconds, between two runs of a schedule (UTC, as the controller reads a
 * CronJob without a time zone), found by walking four years of its runs: `86400` for `0 2 * * *`.
 * Kubernetes' rule for the two day fields holds: when both are restricted, either one matching is enough.
 */
export function longestGapSeconds(schedule: string, key: string): number {
  const fields = checkCron(schedule, key).split(' ');
  const [minutes, hours, days, months, weekDays] = fields.map((field, i) => expand(field, FIELDS[i][1], FIELDS[i][2]));
  if (weekDays.has(7)) weekDays.add(0);
  const eitherDay = !fields[2].startsWith('*') && !fields[4].startsWith('*');
  const times = [...hours].sort((a, b) => a - b).flatMap((h) => [...minutes].sort((a, b) => a - b).map((m) => h * 60 + m));
  const start = Date.UTC(2024, 0, 1);
  const DAYS = 4 * 365 + 1;
  let last: number | undefined;
  let longest = 0;
  for (let d = 0; d < DAYS; d++) {
    const date = new Date(start + d * 86_400_000);
    if (!months.has(date.getUTCMonth() + 1)) continue;
    const dayOfMonth = days.has(date.getUTCDate());
    const dayOfWeek = weekDays.has(date.getUTCDay());
    if (!(eitherDay ? dayOfMonth || dayOfWeek : dayOfMonth && dayOfWeek)) continue;
    for (const t of times) {
      const minute = d * 1440 + t;
      if (last !== undefined) longest = Math.max(longest, minute - last);
      last = minute;
    }
  }
  return (longest || DAYS * 1440) * 60;
}

/** The values a checked cron field stands for. */
function expand(field: string, min: number, max: number): Set<number> {
  const values = new Set<number>();
  for (const part of field.split(',')) {
    const m = /^(\*|(\d+)(?:-(\d+))?)(?:\/(\d+))?$/.exec(part)!;
    const from = m[2] === undefined ? min : Number(m[2]);
    const to = m[3] !== undefined ? Number(m[3]) : m[2] === undefined || m[4] !== undefined ? max : from;
    for (let v = from; v <= to; v += m[4] === undefined ? 1 : Number(m[4])) values.add(v);
  }
  return values;
}
