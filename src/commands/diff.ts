import { oclifCommand } from '../cli/oclif.js';
import spec from '../cli/commands/diff.js';

export default oclifCommand(spec);
