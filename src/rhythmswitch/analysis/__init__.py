"""Per-network analyses of METHOD section 7 and their ensemble summary.

One module per analysis, each a pure kernel plus a thin wrapper returning a typed result:

    signals      band-pass (Butterworth, zero-phase) + Hilbert: envelope and phase
    spectra      spectrum, peak frequency and band power of z per mode
    amplitude    A_i(band k, mode m), tau-amplitude Spearman rho, skewness, kurtosis, Gini,
                 selectivity
    sync         absolute sync strength S_ij, sync degree, active sets, Jaccard turnover
    baseline     baselines, oscillation amplitude, within-mode spread, baseline shift
    phase        coherence ratio eta(m, k), kappa and the paper's phase rule
    fixed_points fixed points of the input-free map (written separately)
    summary      ensemble statistics (Table 1 and trend tests)
    pipeline     analyze_network / analyze_run: everything, written as tidy tables
"""
