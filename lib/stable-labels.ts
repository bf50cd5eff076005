import { ApiObject, JsonPatch } from 'cdk8s';
import { IConstruct } from 'constructs';

/**
 * cdk8s-plus labels pod templates with the construct path (`cdk8s.io/metadata.addr`). A path can
 * change between library versions, and a changed template label rolls every pod, so it goes.
 */
export function withoutConstructPathLabel(workload: IConstruct, templatePath = '/spec/template'): void {
  ApiObject.of(workload).addJsonPatch(JsonPatch.remove(`${templatePath}/metadata/labels/cdk8s.io~1metadata.addr`));
}
