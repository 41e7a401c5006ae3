// The script node:cluster starts for each HTTP front process (cluster.setupPrimary's exec): see process.ts.
import { runFront } from './process.js';

runFront();
