"""Pose tracking in video: the Simple Baselines flow tracker (see tracker.py)."""

from heatpose.tracking.tracker import PoseEstimate, PoseTracker, TrackedPose, TrackerConfig

__all__ = ["PoseEstimate", "PoseTracker", "TrackedPose", "TrackerConfig"]
