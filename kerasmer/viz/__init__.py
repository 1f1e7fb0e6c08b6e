"""Plots: confusion matrices, training curves, attention masks, Grad-CAM, flow, apex curves, montages, F1 bars."""

from kerasmer.viz.attention import plot_attention_masks, plot_grad_cam, plot_spatiotemporal_attention
from kerasmer.viz.images import flow_to_rgb, plot_apex_curve, plot_clip_montage, plot_flow, plot_strain
from kerasmer.viz.plots import plot_confusion_matrix, plot_training_curves
from kerasmer.viz.saliency import GradCam, cam_time_profile, grad_cam, layer_outputs, mask_map
from kerasmer.viz.scores import f1_summary, plot_f1_bars

__all__ = ["GradCam", "cam_time_profile", "f1_summary", "flow_to_rgb", "grad_cam", "layer_outputs", "mask_map",
           "plot_apex_curve", "plot_attention_masks", "plot_clip_montage", "plot_confusion_matrix", "plot_f1_bars",
           "plot_flow", "plot_grad_cam", "plot_spatiotemporal_attention", "plot_strain", "plot_training_curves"]
