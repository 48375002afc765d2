import { oclifCommand } from '../cli/oclif.js';
import spec from '../cli/commands/inspect.js';

export default oclifCommand(spec);
