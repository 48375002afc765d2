import { oclifCommand } from '../cli/oclif.js';
import spec from '../cli/commands/snapshot.js';

export default oclifCommand(spec);
