import { Duration, Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { k8s } from 'cdk8s-plus-28';

/** A JSON Schema fragment. */
export type Schema = { readonly [key: string]: unknown };

/**
 * A library type that `mlflow.yaml` spells as plain text or a small mapping: its JSON Schema (the
 * settings schema embeds it wherever a prop has this type) and the conversion from what YAML holds.
 */
export interface YamlType {
  readonly schema: Schema;
  /** Converts a value the schema has already accepted. */
  readonly fromYaml: (value: unknown) => unknown;
}

const cpu = { type: 'string', pattern: '^([0-9]+m|[0-9]+(\\.[0-9]+)?)$', description: 'CPU such as 250m or 2' };
const size = { type: 'string', pattern: '^[0-9]+(Mi|Gi|Ti)$', description: 'a size such as 512Mi, 10Gi or 1Ti' };
const quantities = { type: 'object', additionalProperties: false, properties: { cpu, memory: size }, required: [] };

function toSize(text: string): Size {
  const amount = Number(text.slice(0, -2));
  return text.endsWith('Ti') ? Size.tebibytes(amount) : text.endsWith('Gi') ? Size.gibibytes(amount) : Size.mebibytes(amount);
}

function toCpu(text: string | undefined): kplus.Cpu | undefined {
  if (text === undefined) return undefined;
  return text.endsWith('m') ? kplus.Cpu.millis(Number(text.slice(0, -1))) : kplus.Cpu.units(Number(text));
}

type Quantities = { cpu?: string; memory?: string };

/** Keyed by the jsii type name (`<assembly>.<type>`) the props use. */
export const YAML_TYPES: Record<string, YamlType> = {
  'cdk8s.Duration': {
    schema: { type: 'string', pattern: '^[0-9]+(s|m|h|d)$', description: 'a duration such as 30s, 5m, 2h or 14d' },
    fromYaml: (value) => {
      const text = value as string;
      const amount = Number(text.slice(0, -1));
      const unit = text.slice(-1);
      return unit === 's' ? Duration.seconds(amount) : unit === 'm' ? Duration.minutes(amount) : unit === 'h' ? Duration.hours(amount) : Duration.days(amount);
    },
  },
  'cdk8s.Size': { schema: size, fromYaml: (value) => toSize(value as string) },
  // Written as Kubernetes writes a container's resources, not as cdk8s-plus's struct.
  'cdk8s-plus-28.ContainerResources': {
    schema: { type: 'object', additionalProperties: false, properties: { requests: quantities, limits: quantities }, required: [] },
    fromYaml: (value) => {
      const r = value as { requests?: Quantities; limits?: Quantities };
      return {
        cpu: { request: toCpu(r.requests?.cpu), limit: toCpu(r.limits?.cpu) },
        memory: { request: r.requests?.memory === undefined ? undefined : toSize(r.requests.memory), limit: r.limits?.memory === undefined ? undefined : toSize(r.limits.memory) },
      };
    },
  },
  // The classes inside Kubernetes' own structs (k8s.Toleration, k8s.Affinity, ...), written as a manifest writes them.
  'cdk8s-plus-28.k8s.Quantity': {
    schema: { type: ['string', 'integer'], pattern: '^[+-]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|[mkMGTPE]|[eE][+-]?[0-9]+)?$', description: 'a Kubernetes quantity such as 500m, 2, 512Mi or 10Gi' },
    fromYaml: (value) => (typeof value === 'number' ? k8s.Quantity.fromNumber(value) : k8s.Quantity.fromString(value as string)),
  },
  'cdk8s-plus-28.k8s.IntOrString': {
    schema: { type: ['integer', 'string'], description: 'a number or a string (a port name, a percentage such as 25%)' },
    fromYaml: (value) => (typeof value === 'number' ? k8s.IntOrString.fromNumber(value) : k8s.IntOrString.fromString(value as string)),
  },
};

/**
 * Props whose value cannot come from the settings file as such: the app supplies it. Credentials
 * come from `.env`, or from the existing Secret named here.
 */
export const APP_SUPPLIED: Record<string, Schema> = {
  'cdk8s-mlflow.Credentials': {
    type: 'object', additionalProperties: false, required: [],
    properties: { existingSecret: { type: 'string', minLength: 1, description: 'An existing Secret with the credentials keys (see the README); no .env is read.' } },
    description: 'Credentials come from .env, or from an existing Secret named here.',
  },
};
