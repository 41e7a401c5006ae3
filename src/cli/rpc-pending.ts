// `rrts workers` and `rrts reset` talk to the RPC plugin, which rrts does not have yet: say so clearly.
import { die, type GlobalOptions } from './options.js';

export function rpcPendingCommand(name: 'workers' | 'reset', _opts: GlobalOptions): never {
  die(`rrts ${name}: needs the RPC plugin (rpc.listen), which this rrts version does not implement yet`);
}
