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
