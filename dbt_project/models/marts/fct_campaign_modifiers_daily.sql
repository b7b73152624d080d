-- The bid modifiers in force per date × campaign, in the simulator's terms: one row per device (mobile, desktop,
-- tablet) and per hour block of the day (var hour_blocks, 6 blocks of 4 hours by default: h00_04 … h20_24).
--
-- Devices: the DEVICE criterion's modifier (1 when the platform reports no criterion for the device).
-- Hour blocks: the platforms schedule per weekday (a block on every weekday is seven AD_SCHEDULE criteria); every
-- weekday-hour of a block is looked up in the day's schedules and the block's modifier is theirs when all 7 × its
-- hours are scheduled at one modifier. A campaign-day without any ad schedule runs every hour at 1. Where the
-- weekdays or hours of a block disagree, or part of it is not scheduled (ads do not run then), the modifier cannot be
-- one number per block: bid_modifier is null, min/max and scheduled_share say why, and the test
-- assert_ad_schedule_folds_into_hour_blocks fails naming the campaign-days.
-- Only campaigns whose platform reports criteria (search) have rows; the others run at 1 everywhere.

{%- set n_blocks = var('hour_blocks') | int %}
{%- set width = (24 // n_blocks) %}

with criteria as (

    select * from {{ ref('stg_ads__modifiers') }}

),

campaign_days as (

    select distinct date, platform, campaign_id from criteria

),

devices as (

    select * from (values (0, 'mobile'), (1, 'desktop'), (2, 'tablet')) as d(key_order, device)

),

device_rows as (

    select
        campaign_days.date,
        campaign_days.platform,
        campaign_days.campaign_id,
        'device'                                   as dimension,
        devices.device                             as modifier_key,
        devices.key_order,
        coalesce(criteria.bid_modifier, 1.0)       as bid_modifier,
        coalesce(criteria.bid_modifier, 1.0)       as min_bid_modifier,
        coalesce(criteria.bid_modifier, 1.0)       as max_bid_modifier,
        1.0                                        as scheduled_share
    from campaign_days
    cross join devices
    left join criteria
        on  criteria.criterion_type = 'DEVICE'
        and criteria.date = campaign_days.date
        and criteria.platform = campaign_days.platform
        and criteria.campaign_id = campaign_days.campaign_id
        and criteria.device = devices.device

),

schedules as (

    select * from criteria where criterion_type = 'AD_SCHEDULE'

),

scheduled_days as (

    select distinct date, platform, campaign_id from schedules

),

-- every weekday-hour of every block, on the campaign-days that have ad schedules
slots as (

    select
        scheduled_days.date,
        scheduled_days.platform,
        scheduled_days.campaign_id,
        weekdays.iso_day_of_week,
        hours.hour,
        hours.hour // {{ width }}                  as block
    from scheduled_days
    cross join (select cast(range as integer) as iso_day_of_week from range(1, 8)) as weekdays
    cross join (select cast(range as integer) as hour from range(24)) as hours

),

-- the modifier of each weekday-hour: the schedule covering the whole hour (null when none does)
slot_modifiers as (

    select
        slots.*,
        max(schedules.bid_modifier)                as max_modifier,
        min(schedules.bid_modifier)                as min_modifier
    from slots
    left join schedules
        on  schedules.date = slots.date
        and schedules.platform = slots.platform
        and schedules.campaign_id = slots.campaign_id
        and schedules.iso_day_of_week = slots.iso_day_of_week
        and schedules.start_minute_of_day <= slots.hour * 60
        and schedules.end_minute_of_day >= (slots.hour + 1) * 60
    group by all

),

scheduled_blocks as (

    select
        date,
        platform,
        campaign_id,
        block,
        min(min_modifier)                                               as min_bid_modifier,
        max(max_modifier)                                               as max_bid_modifier,
        count(min_modifier) / count(*)                                  as scheduled_share
    from slot_modifiers
    group by all

),

blocks as (

    select cast(range as integer) as block from range({{ n_blocks }})

),

block_rows as (

    select
        campaign_days.date,
        campaign_days.platform,
        campaign_days.campaign_id,
        'hour_block'                                                    as dimension,
        'h' || lpad(cast(blocks.block * {{ width }} as varchar), 2, '0')
            || '_' || lpad(cast((blocks.block + 1) * {{ width }} as varchar), 2, '0')
                                                                        as modifier_key,
        blocks.block                                                    as key_order,
        case
            when scheduled_days.date is null then 1.0                  -- no ad schedule: every hour at 1
            when scheduled_blocks.scheduled_share = 1
                 and scheduled_blocks.max_bid_modifier - scheduled_blocks.min_bid_modifier <= 1e-6
                then scheduled_blocks.min_bid_modifier
        end                                                             as bid_modifier,
        coalesce(scheduled_blocks.min_bid_modifier, 1.0)                as min_bid_modifier,
        coalesce(scheduled_blocks.max_bid_modifier, 1.0)                as max_bid_modifier,
        coalesce(scheduled_blocks.scheduled_share, 1.0)                 as scheduled_share
    from campaign_days
    cross join blocks
    left join scheduled_days using (date, platform, campaign_id)
    left join scheduled_blocks using (date, platform, campaign_id, block)

)

select * from device_rows
union all
select * from block_rows
