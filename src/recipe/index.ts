/** Images from recipes (`sextant build`). The overlay and writable-root mounts are in src/runtime/mount/overlay.ts. */
export { parseRecipe, impliedManifest, initInstruction, isRegistryReference, FROM_FORMS, splitWords, RecipeError, type Recipe, type Instruction, type CommandForm, type FromSource, type ImpliedManifest } from './parse.js';
export { buildRecipe, resolveInRoot, BuildStepError, DEFAULT_CACHE_DIR, type BuildOptions, type BuildResult, type StepReport } from './build.js';
export { mergeManifest, formatOf } from './manifest.js';
export { resolveBase, debianBase, aptMirror, DEFAULT_DEBOOTSTRAP_CACHE, type Base } from './base.js';
export { importImage, type ImportOptions, type ImportResult } from './import.js';
