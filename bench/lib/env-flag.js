/** Whether the environment variable `name` is set on ("1", "true" or "yes"). */
export function envFlag(name) {
  return ["1", "true", "yes"].includes(process.env[name] ?? "");
}
