// Package forecast holds the file formats and the evaluation harness around
// package predictor: reading and writing M4-layout CSV files, accuracy
// measures (MASE, sMAPE, coverage and width of an upper quantile) and
// rolling-origin evaluation on request traces (read with package trace).
//
// forecast may do file I/O through io.Reader and io.Writer; the models
// themselves live in predictor, which must stay pure. forecast must not
// depend on clouds, SSH, the scheduler or cmd/tide.
package forecast
