# Reference fits of the structured MMRM covariances by nlme::gls (REML) on fev_data.
#
# Model: FEV1 ~ RACE + SEX + ARMCD * AVISIT, rows with missing FEV1 dropped, with the
# within-subject covariance
#   cs    corCompSymm
#   csh   corCompSymm + varIdent(~ 1 | AVISIT)
#   ar1   corAR1 (visit order)
#   ar1h  corAR1 + varIdent
#   toep  corARMA(p = 3)   (4 visits: a stationary AR(3) correlation is a free Toeplitz one)
#   toeph corARMA(p = 3) + varIdent
# Output: mmrm_structures_nlme.json (logLik, coefficients with SE, covariance matrix).
# Usage: Rscript mmrm_structures_nlme.R PATH/TO/fev_data.csv [OUT_DIR]
suppressPackageStartupMessages({
  library(nlme)
  library(jsonlite)
})
args <- commandArgs(trailingOnly = TRUE)
fev <- read.csv(args[1], stringsAsFactors = FALSE)
outdir <- if (length(args) >= 2) args[2] else "."
fev$AVISIT <- factor(fev$AVISIT, levels = c("VIS1", "VIS2", "VIS3", "VIS4"))
fev$ARMCD <- factor(fev$ARMCD, levels = c("PBO", "TRT"))
fev$RACE <- factor(fev$RACE, levels = c("Asian", "Black or African American", "White"))
fev$SEX <- factor(fev$SEX, levels = c("Male", "Female"))
fev$USUBJID <- factor(fev$USUBJID, levels = unique(fev$USUBJID))
fev <- fev[order(fev$USUBJID, fev$AVISIT), ]
fevc <- fev[!is.na(fev$FEV1), ]

ctl <- glsControl(tolerance = 1e-10, msTol = 1e-10, maxIter = 500, msMaxIter = 1000)
fml <- FEV1 ~ RACE + SEX + ARMCD * AVISIT
het <- varIdent(form = ~ 1 | AVISIT)
models <- list(
  cs = list(correlation = corCompSymm(form = ~ VISITN | USUBJID), weights = NULL),
  csh = list(correlation = corCompSymm(form = ~ VISITN | USUBJID), weights = het),
  ar1 = list(correlation = corAR1(form = ~ VISITN | USUBJID), weights = NULL),
  ar1h = list(correlation = corAR1(form = ~ VISITN | USUBJID), weights = het),
  toep = list(correlation = corARMA(form = ~ VISITN | USUBJID, p = 3), weights = NULL),
  toeph = list(correlation = corARMA(form = ~ VISITN | USUBJID, p = 3), weights = het)
)
full_subj <- names(which(table(fevc$USUBJID) == 4))[1]
out <- list(meta = list(
  description = "nlme::gls REML fits of FEV1 ~ RACE + SEX + ARMCD * AVISIT with structured covariances; see mmrm_structures_nlme.R",
  R = R.version.string, nlme = as.character(packageVersion("nlme"))
))
for (nm in names(models)) {
  m <- models[[nm]]
  g <- gls(fml, data = fevc, correlation = m$correlation, weights = m$weights,
           method = "REML", control = ctl)
  v <- getVarCov(g, individual = full_subj)
  tt <- summary(g)$tTable
  out[[nm]] <- list(
    logLik = as.numeric(logLik(g)),
    coefficients = lapply(setNames(rownames(tt), rownames(tt)), function(r) list(
      estimate = tt[r, "Value"], se = tt[r, "Std.Error"])),
    covariance = unname(lapply(seq_len(nrow(v)), function(i) unname(v[i, ])))
  )
  cat(sprintf("%-6s logLik %.8f\n", nm, as.numeric(logLik(g))))
}
writeLines(toJSON(out, auto_unbox = TRUE, digits = I(15), pretty = TRUE),
           file.path(outdir, "mmrm_structures_nlme.json"))
