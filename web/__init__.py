"""pingan.web"""
