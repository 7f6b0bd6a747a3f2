/** Images from recipes (`sextant build`) and writable container roots. */
export { parseRecipe, impliedManifest, splitWords, RecipeError, type Recipe, type Instruction, type CommandForm, type FromSource, type ImpliedManifest } from './parse.js';
export { buildRecipe, resolveInRoot, BuildStepError, DEFAULT_CACHE_DIR, type BuildOptions, type BuildResult, type StepReport } from './build.js';
export { mergeManifest, formatOf } from './manifest.js';
export { resolveBase, debianBase, aptMirror, DEFAULT_DEBOOTSTRAP_CACHE, type Base } from './base.js';
export { mountWritableRoot, mountOverlay, mountTmpfs, umount, type WritableRoot } from './overlay.js';
