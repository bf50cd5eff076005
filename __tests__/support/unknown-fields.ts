import * as fs from 'fs';
import * as path from 'path';

/**
 * Finds fields the Kubernetes API does not define, using the OpenAPI-generated model maps of the
 * official JavaScript client (each model lists its JSON field names and their types).
 */
const MODEL_DIR = path.join(path.dirname(require.resolve('@kubernetes/client-node/package.json')), 'dist', 'gen', 'model');

type Attribute = { baseName: string; type: string };

function attributes(model: string): Attribute[] | undefined {
  const file = path.join(MODEL_DIR, `${model[0].toLowerCase()}${model.slice(1)}.js`);
  if (!fs.existsSync(file)) return undefined;
  const exported = require(file)[model];
  return exported?.getAttributeTypeMap?.();
}

/** The model name of a top-level object, e.g. apps/v1 Deployment -> V1Deployment. */
export function modelOf(apiVersion: string, kind: string): string {
  const version = apiVersion.split('/').pop()!;
  return `${version[0].toUpperCase()}${version.slice(1)}${kind}`;
}

/** Paths of every field in `value` that model `model` does not define. */
export function unknownFields(value: unknown, model: string, at = ''): string[] {
  if (value === null || value === undefined) return [];
  const arrayOf = /^Array<(.+)>$/.exec(model);
  if (arrayOf) return (value as unknown[]).flatMap((item, i) => unknownFields(item, arrayOf[1], `${at}[${i}]`));
  const mapOf = /^\{ \[key: string\]: (.+); \}$/.exec(model);
  if (mapOf) return Object.entries(value as object).flatMap(([k, v]) => unknownFields(v, mapOf[1], `${at}.${k}`));
  const attrs = attributes(model);
  if (!attrs || typeof value !== 'object') return [];
  const known = new Map(attrs.map((a) => [a.baseName, a.type]));
  return Object.entries(value as object).flatMap(([key, v]) =>
    known.has(key) ? unknownFields(v, known.get(key)!, `${at}.${key}`) : [`${at}.${key}`],
  );
}
