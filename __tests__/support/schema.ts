/** Custom resource kinds the stack may emit. */
export const CUSTOM_RESOURCES = ['monitoring.coreos.com/v1 ServiceMonitor'];

/**
 * Validates an object against the Kubernetes OpenAPI schema compiled into kubernetes-models.
 * Returns the validation errors as text, or an empty list.
 */
export function schemaErrors(object: { apiVersion: string; kind: string }): string[] {
  // Custom resources have no built-in schema; the real API server suite checks them against their CRD.
  if (CUSTOM_RESOURCES.includes(`${object.apiVersion} ${object.kind}`)) return [];
  let model: any;
  try {
    // Core objects live under kubernetes-models/v1/, the others under kubernetes-models/<group>/<version>/.
    model = require(`kubernetes-models/${object.apiVersion}/${object.kind}`)[object.kind];
  } catch {
    return [`no schema for ${object.apiVersion} ${object.kind}`];
  }
  try {
    new model(object).validate();
    return [];
  } catch (err) {
    return [String((err as Error).message)];
  }
}
