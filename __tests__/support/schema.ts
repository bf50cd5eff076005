import * as fs from 'fs';
import * as path from 'path';
import Ajv from 'ajv';
import { parse } from 'yaml';

/** The vendored CRDs' schemas, by `<apiVersion> <kind>`: custom resources are checked against them. */
const CRD_DIR = path.resolve(__dirname, '..', '..', 'imports', 'crds');
const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
const crdSchemas = new Map<string, ReturnType<Ajv['compile']>>();
for (const file of fs.readdirSync(CRD_DIR).filter((f) => f.endsWith('.yaml'))) {
  const crd = parse(fs.readFileSync(path.join(CRD_DIR, file), 'utf8'));
  for (const version of crd.spec.versions) {
    crdSchemas.set(`${crd.spec.group}/${version.name} ${crd.spec.names.kind}`, ajv.compile(version.schema.openAPIV3Schema));
  }
}

/** Custom resource kinds the stack may emit. */
export const CUSTOM_RESOURCES = [...crdSchemas.keys()];

/**
 * Validates an object against the Kubernetes OpenAPI schema compiled into kubernetes-models, or a
 * custom resource against its vendored CRD. Returns the validation errors as text, or an empty list.
 */
export function schemaErrors(object: { apiVersion: string; kind: string; [key: string]: unknown }): string[] {
  const crd = crdSchemas.get(`${object.apiVersion} ${object.kind}`);
  if (crd) return crd(object) ? [] : (crd.errors ?? []).map((e) => `${e.instancePath} ${e.message}`);
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
