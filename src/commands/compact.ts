import { oclifCommand } from '../cli/oclif.js';
import spec from '../cli/commands/compact.js';

export default oclifCommand(spec);
