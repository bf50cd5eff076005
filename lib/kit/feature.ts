/** Every optional part of the stack is switched the same way. */
export interface FeatureSwitch {
  /** On or off; unset means the part's documented default. */
  readonly enabled?: boolean;
}

/** Whether an optional part is on: its `enabled` when set, else its default. */
export function isEnabled(options: FeatureSwitch | undefined, byDefault: boolean): boolean {
  return options?.enabled ?? byDefault;
}
