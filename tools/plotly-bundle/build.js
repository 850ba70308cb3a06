// Same esbuild settings as plotly.js's own build (its esbuild-config.js), on our entry point.
const path = require('path');
const esbuild = require('esbuild');
const { environmentPlugin } = require('esbuild-plugin-environment');
const { glsl } = require('esbuild-plugin-glsl');
const InlineCSSPlugin = require('esbuild-plugin-inline-css');
const version = require('plotly.js/package.json').version;

esbuild.build({
  entryPoints: [path.join(__dirname, 'entry.js')],
  outfile: path.join(__dirname, '..', '..', 'assets', 'vendor', 'plotly-bandscape.min.js'),
  format: 'iife', globalName: 'Plotly', bundle: true, minify: true, sourcemap: false,
  banner: { js: `/* plotly.js v${version} (scatter, scattergl, heatmap) - Copyright 2012-2026, Plotly, Inc. - MIT license */` },
  plugins: [InlineCSSPlugin(), glsl({ minify: true }), environmentPlugin({ NODE_DEBUG: false })],
  alias: { regl: '@plotly/regl', stream: 'stream-browserify' },
  define: { global: 'window', 'define.amd': 'false' },
  target: 'es2016', logLevel: 'info',
}).catch(() => process.exit(1));
