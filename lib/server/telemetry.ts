import * as kplus from 'cdk8s-plus-28';
import { isEnabled } from '../kit/feature';

/** MLflow's usage telemetry. */
export interface TelemetryOptions {
  /**
   * On (MLflow sends usage data to its telemetry service) or off.
   * @default false
   */
  readonly enabled?: boolean;
}

/** Environment every MLflow process of the stack shares: telemetry off unless asked for. */
export function telemetryEnv(options: TelemetryOptions | undefined): Record<string, kplus.EnvValue> {
  return isEnabled(options, false) ? {} : { MLFLOW_DISABLE_TELEMETRY: kplus.EnvValue.fromValue('true') };
}
