export * from "./command.ts";
export * from "./lab.ts";
export * from "./prefix.ts";
export * from "./state.ts";
export * from "./teardown.ts";
export type { Progress } from "./virtual.ts";
