import * as kplus from 'cdk8s-plus-28';
import { isEnabled } from '../kit/feature';
import { ServerPart } from './server-part';

/** MLflow workspaces. */
export interface WorkspacesOptions {
  /**
   * On or off.
   * @default false
   */
  readonly enabled?: boolean;
}

/** `MLFLOW_ENABLE_WORKSPACES` when on. */
export function workspacesPart(options: WorkspacesOptions | undefined): ServerPart {
  return { env: isEnabled(options, false) ? { MLFLOW_ENABLE_WORKSPACES: kplus.EnvValue.fromValue('true') } : {} };
}
