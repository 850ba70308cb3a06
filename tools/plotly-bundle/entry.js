// The traces bandscape draws: scatter (band viewer, loss curves; always in core),
// scattergl (the explorer's map) and heatmap (the evaluate page).
var Plotly = require('plotly.js/lib/core');
Plotly.register([require('plotly.js/lib/scattergl'), require('plotly.js/lib/heatmap')]);
module.exports = Plotly;
