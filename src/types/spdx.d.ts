// spdx-expression-parse and the SPDX licence list (no types of their own).
declare module "spdx-expression-parse" {
  export type Parsed =
    | { readonly license: string; readonly plus?: true; readonly exception?: string }
    | { readonly left: Parsed; readonly conjunction: "and" | "or"; readonly right: Parsed }
  const parse: (expression: string) => Parsed
  export default parse
}
declare module "spdx-license-ids" {
  const ids: ReadonlyArray<string>
  export default ids
}
declare module "spdx-license-ids/deprecated.json" {
  const ids: ReadonlyArray<string>
  export default ids
}
